"""GatewayMetrics, its HTTP endpoint, `[metrics]`/`[logging]` config and JSON logs.

The daemon end to end (real broker, terminals, ledger) is tests/e2e/test_metrics.py.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import socket
import time
from datetime import datetime
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from posgw.drivers.clock import SYSTEM_CLOCK
from posgw.gateway.config import load_config, parse_config
from posgw.gateway.logsetup import JsonFormatter
from posgw.gateway.metrics import LATENCY_BUCKETS, LEDGER_STATUSES, GatewayMetrics, serve_metrics
from posgw.gateway.profiles import load_profile
from posgw.gateway.risk import Action, RuleHit
from posgw.gateway.store import Store
from posgw.gateway.terminals import TerminalLine, TerminalRegistry
from posgw.protocols.config_error import ConfigError
from posgw.sandbox.ports import port_accepts
from tests.center_key import gateway_example, with_center_key
from tests.metrics_scrape import Samples, parse, scrape

MINIMAL = with_center_key({"gateway": {"branch_id": "B001", "gateway_id": "gw-1"}})


def exposed(metrics: GatewayMetrics) -> Samples:
    return parse(generate_latest(metrics.registry).decode())


def test_every_ledger_status_is_exposed_at_zero_from_the_start() -> None:
    samples = exposed(GatewayMetrics(gateway_id="gw-1", branch_id="B001"))
    for status in LEDGER_STATUSES:
        assert samples.value("posgw_transactions_total", outcome=status) == 0
    assert samples.value("posgw_response_seconds_count") == 0
    build = samples.labelled("posgw_build_info")
    assert len(build) == 1 and dict(next(iter(build)))["gateway_id"] == "gw-1"


def test_outcomes_rule_hits_and_mac_failures_are_counted_by_label() -> None:
    metrics = GatewayMetrics()
    duplicate = RuleHit("duplicate_charge", Action.FREEZE, "same charge twice", ("a", "b"))
    for status, hits in [("settled", ()), ("settled", ()), ("declined", ()),
                         ("frozen", (duplicate,)), ("frozen", (duplicate,)),
                         ("chargeback", ())]:  # a status this module never heard of
        metrics.recorded(status, hits)
    metrics.mac_failure("T0001")
    metrics.mac_failure("T0001")
    samples = exposed(metrics)
    assert samples.value("posgw_transactions_total", outcome="settled") == 2
    assert samples.value("posgw_transactions_total", outcome="declined") == 1
    assert samples.value("posgw_transactions_total", outcome="chargeback") == 1
    assert samples.value("posgw_rule_hits_total", rule="duplicate_charge", action="freeze") == 2
    assert samples.value("posgw_mac_failures_total", terminal="T0001") == 2


def test_latency_lands_in_cumulative_buckets_and_count_is_the_inf_bucket() -> None:
    metrics = GatewayMetrics()
    now = time.perf_counter()
    for elapsed in (0.0032, 0.0032, 0.2, 7.0):  # 7 s: past the last bound, only in +Inf
        metrics.responded(now - elapsed)
    samples = exposed(metrics)

    def bucket(le: str) -> float:
        return samples.value("posgw_response_seconds_bucket", le=le)

    assert bucket("0.0025") == 0
    assert bucket("0.005") == 2
    assert bucket("0.25") == 3
    assert bucket(repr(LATENCY_BUCKETS[-1])) == 3
    assert bucket("+Inf") == samples.value("posgw_response_seconds_count") == 4
    assert 7.2064 <= samples.value("posgw_response_seconds_sum") < 8  # plus real time


class _Forwarder:
    """What the metrics read of a forwarder: its connected flag, counts, silence."""

    def __init__(self) -> None:
        self.connected = asyncio.Event()
        self.delivered_total = 0
        self.confirmed_total = 0
        self.republished_total = 0
        self.center_silent = False


async def test_scrape_reads_links_outbox_and_broker_from_their_owners(tmp_path: Path) -> None:
    registry, forwarder = TerminalRegistry(SYSTEM_CLOCK), _Forwarder()
    metrics = GatewayMetrics()
    with Store(f"sqlite:///{tmp_path / 'gw.db'}") as store:
        metrics.watch(outbox=store, links=registry, broker=forwarder)
        registry.seen("T0001", TerminalLine(load_profile("iso87-ascii"), "tcp"))
        up = exposed(metrics)
        registry.line_down({"T0001"})
        forwarder.connected.set()
        down = exposed(metrics)
    assert up.value("posgw_link_up", terminal="T0001", driver="tcp") == 1
    assert up.value("posgw_terminal_state", terminal="T0001", state="online") == 1
    assert up.value("posgw_broker_connected") == 0
    assert up.value("posgw_outbox_depth") == 0
    assert up.value("posgw_outbox_oldest_age_seconds") == 0
    assert up.value("posgw_outbox_pending") == up.value("posgw_outbox_published_unconfirmed") == 0
    assert up.value("posgw_center_silent") == 0
    assert down.value("posgw_link_up", terminal="T0001", driver="tcp") == 0
    assert down.value("posgw_terminal_state", terminal="T0001", state="offline") == 1
    assert down.value("posgw_terminal_state", terminal="T0001", state="online") == 0
    assert down.value("posgw_broker_connected") == 1


async def test_endpoint_serves_over_http_and_stops_with_its_block() -> None:
    metrics = GatewayMetrics()
    metrics.recorded("settled")
    async with serve_metrics(metrics, "127.0.0.1:0") as port:
        assert port is not None and port > 0
        samples = await asyncio.to_thread(scrape, port)
        assert samples.value("posgw_transactions_total", outcome="settled") == 1
    assert not port_accepts(port)


async def test_a_busy_port_raises_so_the_daemon_refuses_to_start() -> None:
    # `posgw run` turns it into "metrics.bind: ... is in use" and exit 2
    # (tests/startup/test_gateway_refusals.py): monitoring is not left blind.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        with pytest.raises(OSError):
            async with serve_metrics(GatewayMetrics(), f"127.0.0.1:{busy}"):
                pass


async def test_no_bind_no_endpoint() -> None:
    async with serve_metrics(GatewayMetrics(), None) as port:
        assert port is None


# -- configuration ---------------------------------------------------------------


def test_metrics_and_logging_are_off_and_text_by_default() -> None:
    config = parse_config(MINIMAL)
    assert config.metrics_bind is None and config.log_format == "text"


def test_the_shipped_example_serves_metrics_on_loopback(tmp_path: Path) -> None:
    config = load_config(gateway_example(tmp_path), environ={})
    assert config.metrics_bind == "127.0.0.1:9464" and config.log_format == "text"


def test_metrics_bind_and_log_format_are_read() -> None:
    config = parse_config({**MINIMAL, "metrics": {"bind": "127.0.0.1:0"},
                           "logging": {"format": "json"}})
    assert config.metrics_bind == "127.0.0.1:0" and config.log_format == "json"


@pytest.mark.parametrize(("table", "key"), [
    ({"metrics": {"bind": "9464"}}, "metrics.bind"),
    ({"metrics": {"bind": "127.0.0.1:99999"}}, "metrics.bind"),
    ({"metrics": {"bind": 9464}}, "metrics.bind"),
    ({"metrics": {"port": 9464}}, "metrics.port"),
    ({"logging": {"format": "xml"}}, "logging.format"),
])
def test_a_metrics_or_logging_mistake_names_its_key(table: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({**MINIMAL, **table}, "gw.toml")
    assert err.value.key == key and err.value.source == "gw.toml"


# -- JSON log lines ----------------------------------------------------------------


def json_logger(name: str) -> tuple[logging.Logger, io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger(name)
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger, out


def test_a_json_line_has_utc_time_level_logger_message_and_extras() -> None:
    logger, out = json_logger("posgw.test.json")
    logger.warning("terminal %s: frame rejected\nover two lines", "T0001",
                   extra={"terminal": "T0001", "stan": "000042", "at": datetime(2025, 3, 14)})
    lines = out.getvalue().splitlines()
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert entry["level"] == "WARNING" and entry["logger"] == "posgw.test.json"
    assert entry["msg"] == "terminal T0001: frame rejected\nover two lines"
    assert (entry["terminal"], entry["stan"], entry["at"]) == ("T0001", "000042",
                                                              "2025-03-14 00:00:00")
    assert entry["ts"].endswith("Z")
    stamp = datetime.fromisoformat(entry["ts"].replace("Z", "+00:00"))
    assert stamp.utcoffset() is not None and stamp.utcoffset().total_seconds() == 0
    assert "exc" not in entry and "args" not in entry and "levelno" not in entry


def test_an_exception_goes_into_the_exc_field() -> None:
    logger, out = json_logger("posgw.test.exc")
    try:
        raise ValueError("bad value")
    except ValueError:
        logger.exception("request failed")
    entry = json.loads(out.getvalue())
    assert entry["msg"] == "request failed" and entry["level"] == "ERROR"
    assert entry["exc"].startswith("Traceback") and "ValueError: bad value" in entry["exc"]
