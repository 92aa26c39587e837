"""`posgw status` from the outside: the real console script on a SQLite database
filled through the Store, as the daemon would have left it."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from posgw.gateway.store import (
    GatewayRuntime,
    LedgerEntry,
    OutboxEvent,
    Reconciliation,
    Store,
    TerminalRecord,
)
from tests.center_key import center_public_key
from tests.posgw_script import run_posgw

DAY = "2025-03-14"
NOON = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)
MASKED_PAN = "476173******0010"




def status_json(*args: str) -> dict:
    result = run_posgw("status", *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def tx(n: int, status: str, amount: int, currency: str = "EUR", *,
       at: datetime = NOON, terminal: str = "T0001") -> LedgerEntry:
    return LedgerEntry(event_id=f"ev-{n}", terminal_id=terminal, stan=f"{n:06d}",
                       kind="purchase", status=status, mti="0200", amount_minor=amount,
                       currency=currency, pan_masked=MASKED_PAN, pan_token="ab" * 16,
                       occurred_at=at)


def event(n: int, created: datetime, delivered: datetime | None = None) -> OutboxEvent:
    return OutboxEvent(event_id=f"ev-{n}", seq=n, topic="pos/v1/B001/T0001/tx",
                       terminal_id="T0001", payload={"n": n}, created_at=created,
                       delivered_at=delivered)


def runtime(*, beat_age_s: float, stopped_age_s: float | None = None,
            connected: bool = True) -> GatewayRuntime:
    now = datetime.now(UTC)
    return GatewayRuntime(
        gateway_id="gw-b001-1", pid=4242, started_at=now - timedelta(hours=2),
        heartbeat_at=now - timedelta(seconds=beat_age_s),
        stopped_at=None if stopped_age_s is None else now - timedelta(seconds=stopped_age_s),
        broker="127.0.0.1:1883", broker_connected=connected,
        broker_changed_at=now - timedelta(hours=1))


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "gateway.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[Store]:
    with Store(f"sqlite:///{db_path}") as opened:
        yield opened


def add(store: Store, *rows: object) -> None:
    with store.session() as session, session.begin():
        session.add_all(rows)


def write_config(tmp_path: Path, db_path: Path) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(f"""
[gateway]
branch_id = "B001"
gateway_id = "gw-b001-1"
database = "sqlite:///{db_path}"

[keys]
center_public_key = "{center_public_key()}"

[[terminals]]
id = "T0001"
driver = "serial"
port = "/dev/posgw/t0001"
profile = "ecr-stx-lrc"

[[terminals]]
id = "T0009"
driver = "usb"
usb = "0b00:0054"
profile = "unionpay-tpdu"
merchant_id = "M0001"
""", encoding="utf-8")
    return path


def test_totals_count_and_sum_per_status_and_currency_of_the_utc_day(
        store: Store, db_path: Path) -> None:
    add(store, tx(1, "settled", 12500), tx(2, "settled", 500), tx(3, "settled", 700, "USD"),
        tx(4, "frozen", 9900), tx(5, "declined", 100, "JPY"),
        tx(6, "refund", 2500, at=datetime(2025, 3, 14, 0, 0, tzinfo=UTC)),  # first instant: in
        tx(7, "settled", 1, at=datetime(2025, 3, 13, 23, 59, 59, tzinfo=UTC)),  # day before
        tx(8, "settled", 1, at=datetime(2025, 3, 15, 0, 0, tzinfo=UTC)))  # day after
    report = status_json("--database", f"sqlite:///{db_path}", "--date", DAY)
    assert report["totals"] == {"date": DAY, "rows": [
        {"status": "declined", "currency": "JPY", "count": 1, "amount_minor": 100},
        {"status": "frozen", "currency": "EUR", "count": 1, "amount_minor": 9900},
        {"status": "refund", "currency": "EUR", "count": 1, "amount_minor": 2500},
        {"status": "settled", "currency": "EUR", "count": 2, "amount_minor": 13000},
        {"status": "settled", "currency": "USD", "count": 1, "amount_minor": 700},
    ]}


def test_human_totals_print_major_units_per_currency_and_no_card_data(
        store: Store, db_path: Path) -> None:
    add(store, tx(1, "settled", 12500), tx(2, "settled", 500), tx(3, "declined", 100, "JPY"))
    result = run_posgw("status", "--database", f"sqlite:///{db_path}", "--date", DAY)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(line.split() == ["settled", "EUR", "2", "130.00"] for line in lines), lines
    assert any(line.split() == ["declined", "JPY", "1", "100"] for line in lines), lines
    assert "476173" not in result.stdout


def test_a_day_without_transactions_totals_to_no_rows(store: Store, db_path: Path) -> None:
    add(store, tx(1, "settled", 12500))
    report = status_json("--database", f"sqlite:///{db_path}", "--date", "2025-03-15")
    assert report["totals"] == {"date": "2025-03-15", "rows": []}


def test_configured_terminal_without_a_row_is_listed_as_never_seen(
        store: Store, db_path: Path, tmp_path: Path) -> None:
    seen = datetime.now(UTC).replace(microsecond=0)
    store.save_terminals([
        TerminalRecord(terminal_id="T0001", profile="ecr-stx-lrc", driver="serial",
                       state="online", registered_at=seen, last_seen_at=seen),
        TerminalRecord(terminal_id="T0100", profile="iso87-ascii", driver="tcp",
                       state="decommissioned", registered_at=seen)])
    config = write_config(tmp_path, db_path)
    report = status_json("-c", str(config))
    assert [(t["id"], t["state"], t["configured"]) for t in report["terminals"]] == [
        ("T0001", "online", True), ("T0009", "never_seen", True),
        ("T0100", "decommissioned", False)]
    unseen = report["terminals"][1]
    assert (unseen["profile"], unseen["driver"], unseen["merchant_id"],
            unseen["last_seen_at"]) == ("unionpay-tpdu", "usb", "M0001", None)
    assert report["terminals"][0]["last_seen_at"] == seen.isoformat().replace("+00:00", "Z")
    assert report["gateway"]["branch_id"] == "B001"
    human = run_posgw("status", "-c", str(config))
    assert any(line.split()[:3] == ["T0009", "never", "seen"] for line in human.stdout.splitlines())


def test_fresh_heartbeat_shows_running_and_the_reported_broker_link(
        store: Store, db_path: Path) -> None:
    add(store, runtime(beat_age_s=1, connected=False))
    report = status_json("--database", f"sqlite:///{db_path}")
    assert report["daemon"]["state"] == "running"
    assert report["daemon"]["pid"] == 4242
    assert report["broker"]["state"] == "disconnected"
    assert report["broker"]["address"] == "127.0.0.1:1883"
    human = run_posgw("status", "--database", f"sqlite:///{db_path}")
    assert "running, pid 4242" in human.stdout
    assert "disconnected to 127.0.0.1:1883 since" in human.stdout


def test_stale_heartbeat_shows_not_running_and_the_broker_as_unknown(
        store: Store, db_path: Path) -> None:
    add(store, runtime(beat_age_s=60, connected=True))
    report = status_json("--database", f"sqlite:///{db_path}")
    assert report["daemon"]["state"] == "not_running"
    assert report["daemon"]["reason"] == "heartbeat_lost"
    assert report["daemon"]["since"] == report["daemon"]["heartbeat_at"]
    assert report["broker"]["state"] == "unknown"
    assert report["broker"]["connected"] is True  # what was last reported, kept for the record
    human = run_posgw("status", "--database", f"sqlite:///{db_path}")
    assert f"not running since {report['daemon']['heartbeat_at']}" in human.stdout
    assert "unknown" in human.stdout


def test_clean_stop_within_the_heartbeat_window_is_not_running(
        store: Store, db_path: Path) -> None:
    add(store, runtime(beat_age_s=3, stopped_age_s=2))
    daemon = status_json("--database", f"sqlite:///{db_path}")["daemon"]
    assert (daemon["state"], daemon["reason"]) == ("not_running", "stopped")
    assert daemon["since"] == daemon["stopped_at"]


def test_no_runtime_row_means_never_started(store: Store, db_path: Path) -> None:
    report = status_json("--database", f"sqlite:///{db_path}")
    assert report["daemon"]["state"] == "never_started"
    assert report["broker"]["state"] == "unknown"


def test_outbox_depth_and_oldest_age_count_only_undelivered_events(
        store: Store, db_path: Path) -> None:
    now = datetime.now(UTC)
    add(store, event(1, now - timedelta(hours=1), delivered=now - timedelta(minutes=59)),
        event(2, now - timedelta(seconds=90)), event(3, now - timedelta(seconds=5)))
    outbox = status_json("--database", f"sqlite:///{db_path}")["outbox"]
    waited_s = (datetime.now(UTC) - now).total_seconds()  # a loaded CI machine is slow to start
    assert outbox["depth"] == 2
    assert 89 <= outbox["oldest_age_s"] < 91 + waited_s


def test_json_has_exactly_the_keys_the_help_documents(store: Store, db_path: Path) -> None:
    store.save_terminals([TerminalRecord(terminal_id="T0001", registered_at=NOON)])
    add(store, tx(1, "settled", 100), runtime(beat_age_s=1), Reconciliation(
        terminal_id="T0001", closed_at=NOON, outcome="mismatched", terminal_totals={"debits": 2},
        ledger_totals={"debits": 1}, differences={"debits": {"terminal": 2, "ledger": 1}}))
    report = status_json("--database", f"sqlite:///{db_path}", "--date", DAY)
    assert report["unreconciled"] == [{
        "terminal_id": "T0001", "closed_at": report["unreconciled"][0]["closed_at"],
        "differences": {"debits": {"terminal": 2, "ledger": 1}},
        "missing_at_gateway": {"debits": 1}, "missing_at_terminal": {},
        "amount_differences": {}, "report_event_id": None}]
    assert set(report) == {"gateway", "daemon", "commands", "broker", "terminals", "totals",
                           "outbox", "unreconciled"}
    assert report["commands"] == {"unsigned_obeyed": None, "center_public_key": None}
    assert set(report["gateway"]) == {"branch_id", "gateway_id", "database"}
    assert set(report["daemon"]) == {"state", "pid", "started_at", "heartbeat_at",
                                     "heartbeat_age_s", "stopped_at", "since", "reason"}
    assert set(report["broker"]) == {"address", "state", "connected", "since"}
    assert set(report["terminals"][0]) == {"id", "state", "profile", "driver", "merchant_id",
                                           "last_seen_at", "configured"}
    assert set(report["totals"]) == {"date", "rows"}
    assert set(report["totals"]["rows"][0]) == {"status", "currency", "count", "amount_minor"}
    assert set(report["outbox"]) == {"depth", "pending", "published_unconfirmed",
                                     "oldest_created_at", "oldest_age_s", "center_silent_since"}
    help_text = run_posgw("status", "--help").stdout
    documented = [*report, *report["daemon"], *report["commands"], *report["broker"],
                  *report["terminals"][0], *report["totals"]["rows"][0], *report["outbox"],
                  *report["unreconciled"][0]]
    assert [key for key in documented if key not in help_text] == []


def test_missing_database_file_exits_2_with_one_line_and_creates_nothing(
        tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "gateway.db"
    result = run_posgw("status", "--database", f"sqlite:///{missing}")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        f"posgw status: {missing}: no such database file "
        "(has `posgw run` started with this config?)"]
    assert not missing.exists() and not missing.parent.exists()


def test_missing_relative_sqlite_path_says_where_it_looked(tmp_path: Path) -> None:
    result = run_posgw("status", "--database", "sqlite:///var/lib/posgw/gateway.db",
                       cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"posgw status: var/lib/posgw/gateway.db: no such database file in {tmp_path} "
        "(a relative path; sqlite:////var/lib/posgw/gateway.db is absolute)"]


def test_database_of_another_schema_version_exits_2_with_one_line(
        store: Store, db_path: Path) -> None:
    store.close()
    with sqlite3.connect(db_path) as connection:
        connection.execute("UPDATE schema_version SET version = 999")
    result = run_posgw("status", "--database", f"sqlite:///{db_path}")
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("posgw status: ")
    assert "schema version 999" in line


def test_no_config_and_no_database_exits_2() -> None:
    result = run_posgw("status")
    assert result.returncode == 2
    assert "give -c gateway.toml or --database URL" in result.stderr


def test_published_unconfirmed_events_and_a_silent_center_are_shown(
        store: Store, db_path: Path) -> None:
    now = datetime.now(UTC)
    published = event(2, now - timedelta(minutes=8))
    published.published_at = now - timedelta(minutes=8)
    beat = runtime(beat_age_s=1)
    beat.center_silent_since = now - timedelta(minutes=7, seconds=5)
    add(store, event(1, now - timedelta(seconds=5)), published, beat)
    outbox = status_json("--database", f"sqlite:///{db_path}")["outbox"]
    assert (outbox["depth"], outbox["pending"], outbox["published_unconfirmed"]) == (2, 1, 1)
    assert outbox["center_silent_since"] is not None
    human = run_posgw("status", "--database", f"sqlite:///{db_path}").stdout
    assert "center has confirmed nothing for 7 min; 1 events published and waiting" in " ".join(
        human.split())
