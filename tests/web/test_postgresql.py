"""The console over a PostgreSQL center (partitioned events table): sign
in, the four searches, the reversal linked, the audit written."""

from __future__ import annotations

from pathlib import Path

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
