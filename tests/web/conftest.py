"""A center database with a few events and one account per role, and the
console app over it (Starlette's TestClient: the real app, in process)."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

with warnings.catch_warnings():
    # Starlette 1.x would rather have httpx2, which this index does not carry;
    # httpx works the same for these tests.
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from posgw.center.config import load_center_config
from posgw.center.db import CenterStore
from posgw.center.web.accounts import add_user
from posgw.center.web.app import create_app
from posgw.center.web.models import create_console_tables
from posgw.gateway.security import GatewayKeys, generate_keys, load_keys
from tests.center.events import signed_event
from tests.e2e.harness import write_toml

PASSWORD = "correct horse battery"
ROLES = ("viewer", "risk", "admin")


@dataclass
class ConsoleSite:
    config_path: Path
    store: CenterStore
    keys: GatewayKeys

    def client(self) -> TestClient:
        """A browser with no session. https: the cookies are Secure."""
        app = create_app(load_center_config(self.config_path), self.store)
        return TestClient(app, base_url="https://testserver", follow_redirects=False)


def login(client: TestClient, name: str, password: str = PASSWORD) -> int:
    """Sign in through the form, as a browser does; returns the status."""
    page = client.get("/login")
    token = page.text.split('name="login_token" value="', 1)[1].split('"', 1)[0]
    answer = client.post("/login", data={"name": name, "password": password,
                                         "login_token": token})
    return answer.status_code


def csrf_of(html: str) -> str:
    return html.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]


def open_site(tmp_path: Path, database: str) -> ConsoleSite:
    """Three settled sales of card ...0010 on T0001 (RRN 1, 2, 3) and a
    reversal of the first, an account per role (named after it)."""
    keys = load_keys(generate_keys(tmp_path / "keys").parent)
    config_path = write_toml(tmp_path / "center.toml", {"center": {"database": database}})
    store = CenterStore(database)
    create_console_tables(store.engine)
    for role in ROLES:
        add_user(store.engine, role, role, PASSWORD)
    for n in range(1, 4):
        store.insert_event("t", signed_event(keys, n))
    store.insert_event("t", reversal_of(keys, signed_event(keys, 1), seq=4))
    return ConsoleSite(config_path, store, keys)


def reversal_of(keys: GatewayKeys, sale: dict[str, Any], *, seq: int) -> dict[str, Any]:
    """The gateway's reversal event of `sale`: its own STAN and RRN here, so
    only `original_event_id` links the two."""
    unsigned = {key: value for key, value in sale.items() if key != "signature"}
    return keys.signer.sign({**unsigned, "event_id": f"{sale['event_id']}-rev", "seq": seq,
                             "status": "reversed", "kind": "reversal", "stan": "900001",
                             "rrn": "900000000001", "original_event_id": sale["event_id"]})


@pytest.fixture
def site(tmp_path: Path) -> Iterator[ConsoleSite]:
    opened = open_site(tmp_path, f"sqlite:///{tmp_path / 'center.db'}")
    yield opened
    opened.store.close()


@pytest.fixture
def signed_in(site: ConsoleSite) -> Callable[[str], TestClient]:
    def client_as(role: str) -> TestClient:
        client = site.client()
        assert login(client, role) == 303
        return client
    return client_as
