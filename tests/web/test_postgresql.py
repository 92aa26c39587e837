"""The console over a PostgreSQL center (partitioned events table): sign
in, the four searches, the reversal linked, the audit written."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from posgw.center.db import CenterStore
from posgw.center.web.audit import latest
from tests.center.events import DAY_TEXT
from tests.store.pg import scratch_database
from tests.web.conftest import csrf_of, login, open_site


def test_the_console_works_over_postgresql(tmp_path: Path) -> None:
    with scratch_database() as url:
        site = open_site(tmp_path, url)
        try:
            client = site.client()
            assert login(client, "viewer") == 303
            token = csrf_of(client.get("/search").text)
            forms = {
                "card": {"last4": "0010", "amount": "12.50", "currency": "EUR",
                         "day": DAY_TEXT},
                "rrn": {"rrn": "000000000002"},
                "terminal": {"terminal": "T0001", "stan": "000003"},
                "place": {"merchant": "M0001", "day": DAY_TEXT},
            }
            for kind, form in forms.items():
                answer = client.post("/search", data={"csrf_token": token, "kind": kind,
                                                      **form})
                assert answer.status_code == 200 and 'href="/tx/' in answer.text, kind
            sale = client.get("/tx/ev-B001-T0001-1")
            assert 'href="/tx/ev-B001-T0001-1-rev"' in sale.text
            assert [entry.action for entry in latest(site.store.engine)][:2] == [
                "view transaction", "search"]
        finally:
            site.store.close()


def test_a_database_made_before_the_merchant_index_gets_it_at_open(tmp_path: Path) -> None:
    """The merchant + day search reads the merchant's rows, not the whole
    day's (bench/console_search.py): the index is made on older databases too."""
    with scratch_database() as url:
        site = open_site(tmp_path, url)  # one month's partition, with rows
        with site.store.engine.begin() as conn:
            conn.execute(text("DROP INDEX ix_center_events_merchant_day"))
        site.store.close()
        reopened = CenterStore(url)
        try:
            with reopened.engine.connect() as conn:
                made = conn.execute(text(
                    "SELECT tablename, indexdef FROM pg_indexes WHERE indexdef LIKE "
                    "'%(merchant_id, occurred_date, occurred_at)'")).all()
        finally:
            reopened.close()
    tables = {table for table, _ in made}
    assert "center_events" in tables and any(t.startswith("center_events_") for t in tables)


def test_sqlite_gets_the_merchant_index_too(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'center.db'}"
    store = CenterStore(url)
    with store.engine.begin() as conn:
        conn.execute(text("DROP INDEX ix_center_events_merchant_day"))
    store.close()
    reopened = CenterStore(url)
    try:
        with reopened.engine.connect() as conn:
            names = set(conn.execute(text(
                "SELECT name FROM sqlite_master WHERE type = 'index'")).scalars())
    finally:
        reopened.close()
    assert "ix_center_events_merchant_day" in names
