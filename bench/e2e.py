"""End-to-end gateway figures: throughput, latency, memory; forwarder vs aiomqtt.

The gateway runs as its own process (`posgw run`, SQLite WAL with
synchronous=FULL, stand-in authorization, forwarding to a private broker);
this process plays the terminals over loopback TCP (iso87-ascii) and counts
only answered requests. Phases:

1. throughput: `--closed-terminals` terminals, each sending its next
   request as soon as the last is answered;
2. latency: 500 tx/s open loop (100 terminals x 5/s), p50/p99 of the
   terminal-observed request→response time;
3. memory: 500 terminals connected at 1 tx/s each; the gateway's RSS;
4. forwarder: an outbox of `--events` rows delivered by OutboxForwarder
   (read, sign, publish QoS 1, mark delivered on PUBACK) against a bare
   aiomqtt client publishing the same signed payloads with the same window.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiomqtt

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `python bench/e2e.py`

from bench.readme import machine, update_readmes
from posgw.drivers.clock import SYSTEM_CLOCK
from posgw.drivers.mqtt import MqttConfig
from posgw.gateway.forward import OutboxForwarder
from posgw.gateway.forward.events import new_event_id, outbox_row
from posgw.gateway.forward.forwarder import MQTT_LOGGER
from posgw.gateway.profiles import codec_for, load_profile
from posgw.gateway.security.keys import generate_keys, load_keys
from posgw.gateway.store import GroupCommitter, Store
from posgw.protocols.contract import tx_event
from posgw.protocols.normalize import Transaction, TxKind
from posgw.sandbox.demo.cards import card_pool
from posgw.sandbox.mosquitto import RunningBroker, demo_broker
from posgw.sandbox.ports import free_port, port_accepts
from posgw.sandbox.processes import cpu_seconds, wait_until
from posgw.simulator.cards import Card
from posgw.simulator.loadgen import percentile

PROFILE = load_profile("iso87-ascii")
WINDOW = 64
#: Distinct cards, each at a random terminal: at 2,000 tx/s a card comes back
#: to the same terminal about every 1,000 s, rarely enough for the card rules
#: (three swipes in 5 minutes on one terminal freeze) to see honest traffic.
#: With 2,000 cards they froze most sales, which is another path.
CARDS = 20_000
#: The gateway runs pinned to one CPU, as deploy/gateway.example.toml
#: advises (`[gateway] cpus`); the broker and this process take the rest.
GATEWAY_CPU = max(os.sched_getaffinity(0))
GATEWAY_START_DEADLINE_S = 30.0


def gateway_toml(workdir: Path, broker: RunningBroker, port: int) -> Path:
    path = workdir / "gateway.toml"
    path.write_text(f"""
[gateway]
branch_id = "BENCH"
gateway_id = "gw-bench"
database = "sqlite:///{workdir / 'gateway.db'}"
cpus = [{GATEWAY_CPU}]
[mqtt]
host = "{broker.host}"
port = {broker.port}
[store]
outbox_cap = 10000000
[keys]
dir = "{workdir / 'keys'}"
[upstream]
mode = "standin"
floor_limit = 100000000
[commands]
# No center in this bench, only a subscriber: nobody signs confirmations, so
# events count as delivered at the broker's PUBACK, which is what a gateway
# without a center key does, and it may run so only when the config says so.
insecure_obey_unsigned = true
# Each bench terminal sends up to 20 requests a second, 144 times the
# velocity rule's 500 an hour: it would freeze nearly every sale (a case and
# a vault row each) after 25 s. The per-terminal rules are off here; every
# card rule stays on.
[risk.rules.terminal_velocity]
enabled = false
[risk.rules.many_cards]
enabled = false
[[listeners]]
bind = "127.0.0.1:{port}"
profile = "iso87-ascii"
# The bench's terminals are numbered on the command line: the explicit opt-in,
# and room for all of them, every one dialling from 127.0.0.1.
register_unknown = true
max_terminals = 2000
max_connections = 2000
max_connections_per_address = 2000
""")
    return path


def start_gateway(config: Path, workdir: Path) -> subprocess.Popen[bytes]:
    posgw = shutil.which("posgw") or str(Path(sys.executable).with_name("posgw"))
    log = (workdir / "gateway.log").open("wb")
    return subprocess.Popen([posgw, "run", "-c", str(config), "--log-level", "warning"],
                            stdout=log, stderr=log)


class FrameTemplates:
    """Purchases built once per card (PIN block, track 2, field 55 and all);
    each request is a template with a fresh STAN written over the old one.

    The bench measures the gateway, not the terminal simulator: building
    every request from scratch in this process cost more CPU per request
    than the gateway spends answering it, on the same two cores.
    """

    MARK = "987651"

    def __init__(self, cards: list[Card]) -> None:
        from posgw.simulator.requests import RequestBuilder, StanCounter

        class Fixed(StanCounter):
            def next(self) -> str:
                return FrameTemplates.MARK

        builder = RequestBuilder(PROFILE.iso8583, terminal_id="B0000000",
                                 merchant_id="M00000000000001", clock=SYSTEM_CLOCK,
                                 stans=Fixed())
        codec = codec_for(PROFILE)
        # Amounts differ from card to card (1.00 to 100.99), as at a counter.
        self.frames = [codec.encode(builder.purchase(card, 1_00 + index % 10_000))
                       for index, card in enumerate(cards)]
        self.stan_at = [frame.index(self.MARK.encode()) for frame in self.frames]
        self.tid_at = [frame.index(b"B0000000") for frame in self.frames]
        # Across phases: a STAN used again with the same field 7 is a
        # retransmission (answered from the cache, no commit), and a card
        # sequence that restarts with each phase is the same card swiped again
        # on the same terminal (a freeze).
        self._stans: dict[bytes, int] = {}
        self._cards = random.Random(len(cards))

    def next_request(self, terminal_id: bytes) -> bytes:
        """A purchase of a random card, the terminal's next STAN, length-prefixed."""
        index = self._cards.randrange(len(self.frames))
        stan = self._stans[terminal_id] = self._stans.get(terminal_id, 0) % 999_999 + 1
        frame = bytearray(self.frames[index])
        frame[self.stan_at[index]:self.stan_at[index] + 6] = b"%06d" % stan
        frame[self.tid_at[index]:self.tid_at[index] + 8] = terminal_id
        return len(frame).to_bytes(2, "big") + bytes(frame)


async def terminal_loop(port: int, index: int, templates: FrameTemplates, rate: float | None,
                        seconds: float, latencies: list[float]) -> None:
    """One IP terminal: a request, its answer, the next (paced when `rate`)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    terminal_id = b"B%07d" % index
    start, sent = time.monotonic(), 0
    if rate is not None:  # independent terminals: each at its own phase of the period
        start += random.Random(index).random() / rate
    try:
        while time.monotonic() - start < seconds:
            if rate is not None:
                delay = start + sent / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)  # open-loop pacing
            sent += 1
            frame = templates.next_request(terminal_id)
            began = time.monotonic()
            writer.write(frame)
            size = int.from_bytes(await reader.readexactly(2), "big")
            answer = await reader.readexactly(size)
            if answer[:4] == b"0210":
                latencies.append(time.monotonic() - began)
    finally:
        writer.close()


async def load(port: int, terminals: int, rate: float | None, seconds: float,
               templates: FrameTemplates) -> tuple[list[float], float]:
    latencies: list[float] = []
    started = time.monotonic()
    async with asyncio.TaskGroup() as group:
        for index in range(terminals):
            group.create_task(terminal_loop(port, index, templates, rate, seconds, latencies))
    return latencies, time.monotonic() - started


def emit(lines: list[str], line: str) -> None:
    """Record a result line and show it now (the phases take a while)."""
    lines.append(line)
    print(line, file=sys.stderr, flush=True)


class CpuMeter:
    """The gateway's CPU over one phase: cores busy, and CPU time per answer.
    The per-answer figure is what to compare across machines."""

    def __init__(self, pid: int) -> None:
        self._pid = pid
        self._cpu, self._at = self._cpu_now(), time.monotonic()

    def line(self, answered: int) -> str:
        used, elapsed = self._cpu_now() - self._cpu, time.monotonic() - self._at
        return (f"gateway CPU {used / elapsed:.2f} cores, "
                f"{used / max(answered, 1) * 1e6:,.0f} us a request")

    def _cpu_now(self) -> float:
        used = cpu_seconds(self._pid)
        if used is None:
            raise RuntimeError(f"no CPU time for the gateway (pid {self._pid}): /proc unreadable")
        return used


def rss_mb(pid: int) -> tuple[float, float]:
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text()
                  .splitlines() if ":" in line)
    return (int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024)


@dataclass
class Figures:
    """What the one-line summary at the end reports."""

    throughput: float = 0.0
    p99_ms: float = 0.0
    rss_mb: float = 0.0
    forwarder_ratio: float = 0.0

    def line(self) -> str:
        return (f"e2e: {self.throughput:,.0f} tx/s, p99 {self.p99_ms:.1f} ms at 500 tx/s, "
                f"rss {self.rss_mb:.0f} MB, forwarder {self.forwarder_ratio:.0%} of bare")


class DeliveryLag:
    """A subscriber to the bench branch's events: `occurred_at` → arrival, for
    the events that occur while `since` is set."""

    def __init__(self, broker: RunningBroker) -> None:
        self._broker = broker
        self.subscribed = asyncio.Event()
        self.since: datetime | None = None
        self.lags: list[float] = []

    async def run(self) -> None:
        async with aiomqtt.Client(self._broker.host, self._broker.port,
                                  logger=MQTT_LOGGER) as client:
            await client.subscribe("pos/v1/BENCH/+/tx", qos=1)
            self.subscribed.set()
            async for message in client.messages:
                if self.since is not None and isinstance(message.payload, bytes):
                    occurred = datetime.fromisoformat(json.loads(message.payload)["occurred_at"])
                    if occurred >= self.since:
                        self.lags.append((datetime.now(UTC) - occurred).total_seconds())


async def drain(store: Store, timeout_s: float = 60.0) -> tuple[int, float]:
    """The outbox depth now, and the seconds until the broker had all of it."""
    started = time.monotonic()
    backlog = depth = store.outbox_stats().depth
    while depth and time.monotonic() - started < timeout_s:
        await asyncio.sleep(0.05)  # polling the gateway's table with a deadline
        depth = store.outbox_stats().depth
    return backlog, time.monotonic() - started


async def gateway_phases(args: argparse.Namespace, workdir: Path, broker: RunningBroker,
                         figures: Figures) -> list[str]:
    port = free_port()
    process = start_gateway(gateway_toml(workdir, broker, port), workdir)
    cards = FrameTemplates(card_pool(7, CARDS))
    lag = DeliveryLag(broker)
    lines: list[str] = []
    store = Store(f"sqlite:///{workdir / 'gateway.db'}")  # read-only use: the outbox depth
    try:
        await asyncio.to_thread(wait_until, lambda: port_accepts(port), "the gateway",
                                GATEWAY_START_DEADLINE_S, process)
        async with asyncio.TaskGroup() as probe:
            listening = probe.create_task(lag.run())
            await lag.subscribed.wait()
            await load(port, 8, None, 2, cards)  # warm-up
            meter = CpuMeter(process.pid)
            latencies, elapsed = await load(port, args.closed_terminals, None, args.seconds,
                                            cards)
            figures.throughput = len(latencies) / elapsed
            cpu = meter.line(len(latencies))
            backlog, drained_s = await drain(store)
            emit(lines, f"throughput: {figures.throughput:,.0f} tx/s answered "
                         f"({args.closed_terminals} terminals, closed loop, {elapsed:.0f} s, "
                         f"SQLite synchronous=FULL); {cpu}; outbox {backlog} at the end, "
                         f"delivered {drained_s:.1f} s later")
            lag.since = datetime.now(UTC)
            meter = CpuMeter(process.pid)
            latencies, _ = await load(port, 100, 5.0, args.seconds, cards)
            cpu = meter.line(len(latencies))
            await drain(store)
            await asyncio.sleep(0.5)  # the last events' way to the subscriber
            listening.cancel()
        latencies.sort()
        lag.lags.sort()
        figures.p99_ms = percentile(latencies, 99) * 1000
        emit(lines, f"latency at 500 tx/s: p50 {percentile(latencies, 50) * 1000:.1f} ms, "
                     f"p99 {figures.p99_ms:.1f} ms ({len(latencies)} answered); {cpu}; "
                     f"delivery lag p99 {percentile(lag.lags, 99) * 1000:.1f} ms "
                     f"({len(lag.lags)} events)")
        latencies, _ = await load(port, 500, 1.0, args.seconds, cards)
        figures.rss_mb, peak = rss_mb(process.pid)
        emit(lines, f"memory with 500 terminals at 1 tx/s: RSS {figures.rss_mb:.0f} MB "
                     f"(peak {peak:.0f} MB), {len(latencies)} answered")
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.to_thread(process.wait, 60)
    stats = store.outbox_stats()
    store.close()
    lines.append(f"after SIGTERM: exit code {process.returncode}, "
                 f"outbox undelivered {stats.depth}")
    return lines


def sample_event(index: int) -> dict[str, object]:
    tx = Transaction(kind=TxKind.PURCHASE, mti="0200", version=1987, amount_minor=1_00,
                     currency="EUR", stan=f"{index % 999_999 + 1:06d}", terminal_id="T0000001",
                     merchant_id="M1", pan_masked="476173******0010", rrn="000000000001",
                     auth_code="S00001", response_code="00")
    return tx_event(tx, status="settled", event_id=new_event_id(), branch_id="BENCH",
                    gateway_id="gw-bench", pan_token="t" * 64, risk=[],
                    occurred_at=SYSTEM_CLOCK.utc_now())


async def forwarder_phase(events: int, workdir: Path, broker: RunningBroker,
                          figures: Figures) -> list[str]:
    keys = load_keys(generate_keys(workdir / "fkeys").parent)
    store = Store(f"sqlite:///{workdir / 'forward.db'}")
    mqtt = MqttConfig(host=broker.host, port=broker.port)
    forwarder = OutboxForwarder(store, mqtt, keys.signer, branch_id="BENCH",
                                gateway_id="gw-bench", window=WINDOW)
    # Sealed at commit as in the daemon: the forwarder publishes stored bytes.
    async with GroupCommitter(store, outbox_cap=events + 1, seal=forwarder.seal) as committer:
        await asyncio.gather(*(committer.commit(None, outbox_row(
            sample_event(i), topic="bench/BENCH/T0000001/tx", clock=SYSTEM_CLOCK))
            for i in range(events)))
    payloads = [row.wire or b"" for row in store.pending_outbox(events)]  # the same bytes
    task = asyncio.create_task(forwarder.run())
    # Timed from the connection, as the peer is: connecting is not publishing.
    await forwarder.connected.wait()
    started, already = time.monotonic(), forwarder.delivered_total
    while forwarder.delivered_total < events:
        await asyncio.sleep(0.01)
    forwarder_rate = (events - already) / (time.monotonic() - started)
    task.cancel()
    bare_rate = await bare_publish(broker, payloads)
    store.close()
    figures.forwarder_ratio = forwarder_rate / bare_rate
    return [f"forwarder: {forwarder_rate:,.0f} events/s; bare aiomqtt: {bare_rate:,.0f} "
            f"msg/s; ratio {forwarder_rate / bare_rate:.2f} (QoS 1, window {WINDOW})"]


async def bare_publish(broker: RunningBroker, payloads: list[bytes]) -> float:
    """The peer: one aiomqtt client, the same sliding window, nothing else."""
    async with aiomqtt.Client(broker.host, broker.port, protocol=aiomqtt.ProtocolVersion.V5,
                              max_inflight_messages=WINDOW, logger=MQTT_LOGGER) as client:
        slots = asyncio.Semaphore(WINDOW)

        async def publish(payload: bytes) -> None:
            async with slots:
                await client.publish("bench/bare/tx", payload, qos=1)

        started = time.monotonic()
        await asyncio.gather(*(publish(payload) for payload in payloads))
        return len(payloads) / (time.monotonic() - started)


async def run(args: argparse.Namespace) -> list[str]:
    workdir = Path(tempfile.mkdtemp(prefix="posgw-bench-"))
    try:
        async with demo_broker(workdir) as broker:
            figures = Figures()
            lines = [f"machine: {machine()}; broker: {broker.kind}"]
            lines += await gateway_phases(args, workdir, broker, figures)
            lines += await forwarder_phase(args.events, workdir, broker, figures)
            return [*lines, figures.line()]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=15.0, help="per load phase")
    parser.add_argument("--closed-terminals", type=int, default=100)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--update-readme", action="store_true")
    args = parser.parse_args()
    lines = asyncio.run(run(args))
    report = "".join(line + "\n" for line in lines)
    print(report, end="")
    if args.update_readme:
        update_readmes("e2e", "python bench/e2e.py", report)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
