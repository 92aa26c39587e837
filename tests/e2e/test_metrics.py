"""The daemon's Prometheus endpoint, scraped over HTTP as Prometheus does, against
the ledger it reports on; and `posgw run --log-format json` as a real process."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from posgw.drivers.clock import SYSTEM_CLOCK
from posgw.drivers.tcp_link import connect_tcp
from posgw.gateway.config import GatewayConfig, parse_config
from posgw.gateway.daemon import Gateway
from posgw.gateway.store import LedgerEntry
from posgw.sandbox.demo.cards import card_pool
from posgw.sandbox.ports import free_port, port_accepts
from posgw.simulator.cards import Card
from posgw.simulator.terminal import TerminalSimulator
from tests.brokers import shared_broker_port
from tests.e2e.harness import (
    TCP_PROFILE,
    config_table,
    gateway_and_center,
    ledger_rows,
    wait_for,
    write_toml,
)
from tests.metrics_scrape import Samples, scrape
from tests.posgw_script import POSGW

FLOOR_LIMIT = 50_00  # stand-in approves up to 50.00; above it declines (61)
TERMINAL = "M0000001"


def metrics_table(workdir: Path, broker_port: int, *, metrics_port: int = 0,
                  listen_port: int = 0) -> dict[str, Any]:
    table = config_table(workdir, broker_port, listen_port=listen_port,
                         upstream={"mode": "standin", "floor_limit": FLOOR_LIMIT})
    table["metrics"] = {"bind": f"127.0.0.1:{metrics_port}"}
    return table


async def scraped(gateway: Gateway) -> Samples:
    assert gateway.metrics_port is not None, "the endpoint is up once the gateway is ready"
    return await asyncio.to_thread(scrape, gateway.metrics_port)


async def until_scrape(gateway: Gateway, holds: Callable[[Samples], bool], what: str,
                       timeout_s: float = 30.0) -> Samples:
    """Scrape until `holds` (the state changes in the daemon's own time), with a deadline."""
    deadline = SYSTEM_CLOCK.monotonic() + timeout_s
    while True:
        samples = await scraped(gateway)
        if holds(samples):
            return samples
        assert SYSTEM_CLOCK.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)  # polling the endpoint with a deadline


async def with_gateway(workdir: Path, table: dict[str, Any],
                       body: Callable[[Gateway], Awaitable[None]], *,
                       center: bool = True) -> list[LedgerEntry]:
    """Run a daemon for `body` (with a center that confirms what it stores,
    unless `center` is False: the broker may be unreachable), stop them, and
    return the daemon's ledger."""
    config = parse_config(table, "(metrics e2e)")
    async with contextlib.AsyncExitStack() as stack:
        if center:
            gateway, _ = await stack.enter_async_context(
                gateway_and_center(config, workdir, table["mqtt"]["port"]))
        else:
            gateway = await stack.enter_async_context(running_gateway(config))
        await body(gateway)
    assert gateway.metrics_port is not None and not port_accepts(gateway.metrics_port)
    return ledger_rows(config.database)


@contextlib.asynccontextmanager
async def running_gateway(config: GatewayConfig) -> AsyncIterator[Gateway]:
    gateway, stop = Gateway(config), asyncio.Event()
    run = asyncio.create_task(gateway.run(stop))
    try:
        await gateway.ready.wait()
        yield gateway
    finally:
        stop.set()
        await run


async def terminal_buys(port: int, cards: list[Card],
                        purchases: list[tuple[int, int]]) -> TerminalSimulator:
    """(card index, amount) purchases over one TCP line; the line is closed after."""
    transport = await connect_tcp("127.0.0.1", port, timeout=5)
    sim = TerminalSimulator(TCP_PROFILE, transport, TERMINAL, "M00000000000001", cards,
                            response_timeout_s=10.0, max_repeats=0)
    async with sim:
        for card, amount in purchases:
            exchange = await sim.purchase(cards[card].pan, amount)
            assert exchange.response_code is not None, exchange
    return sim


@pytest.mark.e2e
async def test_scraped_counters_and_latency_match_the_ledger(tmp_path: Path) -> None:
    cards = card_pool(11, 6)
    purchases = [(0, 12_00), (1, 13_00), (2, 14_00),  # settled
                 (3, 99_00), (4, 120_00),  # over the floor limit: declined
                 (5, 7_00), (5, 7_00)]  # the same charge twice: the second is frozen
    result: dict[str, Any] = {}

    async def body(gateway: Gateway) -> None:
        assert gateway.forwarder is not None
        await gateway.forwarder.connected.wait()
        transport = await connect_tcp("127.0.0.1", gateway.listener_ports[0], timeout=5)
        async with TerminalSimulator(TCP_PROFILE, transport, TERMINAL, "M00000000000001",
                                     cards, response_timeout_s=10.0, max_repeats=0) as sim:
            for card, amount in purchases:
                assert (await sim.purchase(cards[card].pan, amount)).response_code is not None
            result["online"] = await scraped(gateway)
        result["offline"] = await until_scrape(
            gateway, lambda s: s.get("posgw_link_up", terminal=TERMINAL, driver="tcp") == 0,
            "the link to go down")
        result["drained"] = await until_scrape(  # marked delivered, then counted: both
            gateway, lambda s: s.get("posgw_outbox_depth") == 0
            and (s.get("posgw_outbox_delivered_total") or 0) >= len(purchases),
            "the outbox to drain")
        result["answered"] = len(sim.exchanges)

    rows = await with_gateway(tmp_path, metrics_table(tmp_path, shared_broker_port()), body)
    online: Samples = result["online"]
    by_status = Counter(row.status for row in rows)
    assert by_status == {"settled": 4, "declined": 2, "frozen": 1}
    for status in ("settled", "declined", "frozen", "refund", "voided", "reversed"):
        assert online.value("posgw_transactions_total", outcome=status) == by_status[status]
    hits = Counter(rule for row in rows for rule in row.risk)
    assert hits == {"duplicate_charge": 1}
    assert online.value("posgw_rule_hits_total", rule="duplicate_charge", action="freeze") == 1
    assert online.value("posgw_response_seconds_count") == result["answered"] == len(rows)
    assert online.value("posgw_response_seconds_bucket", le="+Inf") == len(rows)
    assert online.value("posgw_response_seconds_sum") > 0
    assert online.value("posgw_link_up", terminal=TERMINAL, driver="tcp") == 1
    assert online.value("posgw_terminal_state", terminal=TERMINAL, state="online") == 1
    assert online.value("posgw_broker_connected") == 1
    offline: Samples = result["offline"]
    assert offline.value("posgw_terminal_state", terminal=TERMINAL, state="offline") == 1
    drained: Samples = result["drained"]
    assert drained.value("posgw_outbox_oldest_age_seconds") == 0
    assert drained.value("posgw_outbox_delivered_total") >= len(rows)  # + status events


@pytest.mark.e2e
async def test_outbox_grows_and_broker_reads_down_while_the_broker_is_unreachable(
        tmp_path: Path) -> None:
    closed_port = free_port()  # nothing listens: every connection attempt is refused
    cards = card_pool(12, 3)
    result: dict[str, Samples] = {}

    async def body(gateway: Gateway) -> None:
        await terminal_buys(gateway.listener_ports[0], cards, [(0, 10_00), (1, 11_00),
                                                               (2, 12_00)])
        result["scrape"] = await scraped(gateway)

    rows = await with_gateway(tmp_path, metrics_table(tmp_path, closed_port), body,
                              center=False)
    samples = result["scrape"]
    assert [row.status for row in rows] == ["settled"] * 3
    assert samples.value("posgw_broker_connected") == 0
    assert samples.value("posgw_outbox_depth") >= len(rows)
    assert samples.value("posgw_outbox_oldest_age_seconds") > 0
    assert samples.value("posgw_outbox_delivered_total") == 0
    assert samples.value("posgw_transactions_total", outcome="settled") == 3


def test_a_json_logging_daemon_writes_only_json_lines_and_serves_metrics(
        tmp_path: Path) -> None:
    listen, metrics_port = free_port(), free_port()
    table = metrics_table(tmp_path, shared_broker_port(), metrics_port=metrics_port,
                          listen_port=listen)
    config = write_toml(tmp_path / "gw.toml", table)
    log = tmp_path / "gw.log"
    with log.open("wb") as out:
        daemon = subprocess.Popen([POSGW, "run", "--log-format", "json", "-c", str(config)],
                                  stdout=out, stderr=out)
    try:
        wait_for(lambda: port_accepts(listen) and port_accepts(metrics_port), "the daemon")
        asyncio.run(_one_sale_and_one_garbage_frame(listen, card_pool(13, 1)))
        samples = scrape(metrics_port)
        assert samples.value("posgw_transactions_total", outcome="settled") == 1
        assert samples.value("posgw_response_seconds_count") >= 1
    finally:
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(30) == 0
    assert not port_accepts(metrics_port)
    entries = [json.loads(line) for line in log.read_text().splitlines()]  # each line parses
    for entry in entries:
        assert {"ts", "level", "logger", "msg"} <= entry.keys()
        assert datetime.fromisoformat(entry["ts"].replace("Z", "+00:00")).utcoffset() is not None
    messages = [entry["msg"] for entry in entries]
    assert any(m.startswith("metrics on http://127.0.0.1:") for m in messages)
    assert any(e["level"] == "WARNING" and "undecodable message" in e["msg"] for e in entries)
    assert any(m.startswith("stopping:") for m in messages)


async def _one_sale_and_one_garbage_frame(port: int, cards: list[Card]) -> None:
    await terminal_buys(port, cards, [(0, 10_00)])
    transport = await connect_tcp("127.0.0.1", port, timeout=5)
    try:
        await transport.write(b"\x00\x06GARBLE")  # a length header, then no ISO 8583
        await transport.write(b"\x00\x040800")  # and a real frame behind it: answered 30
        assert await transport.read(64)  # the gateway has handled both frames
    finally:
        await transport.close()
