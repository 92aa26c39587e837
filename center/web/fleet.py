"""The fleet as the center sees it: gateways and terminals, from the latest
statuses the ingest keeps (center/fleet_status.py), the gateway keys
(center/registry.py), the seq-gap accounting (center/seq_gaps.py) and the
decommissions the console sent.

A terminal is *draining* once its gateway says so in its status, and
already from the moment the console sent its decommission (the gateway
refuses new sales meanwhile, and retires it, "decommissioned", once
everything it did has reached the center). Every query reads a table keyed by what it filters
on, bounded by MAX_LISTED.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session, col, select

from posgw.center.config import CenterConfig
from posgw.center.db import CenterStore
from posgw.center.fleet_status import parse_stamp
from posgw.center.registry import trusted_keys
from posgw.center.web.models import DecommissionRequest

#: Rows a fleet page lists at most (of gateways, and of terminals).
MAX_LISTED = 2000
_TERMINAL_SELECT = ("SELECT branch_id, terminal_id, gateway_id, state, profile, driver, "
                    "statement, occurred_at FROM center_terminal_status")
#: What the path of a terminal's page may hold (schemas: branch 32, terminal 16).
_IDENTIFIER = re.compile(r"^[A-Za-z0-9_.\-]{1,32}$")
DRAINING, DECOMMISSIONED = "draining", "decommissioned"
#: What the fleet calls a gateway or terminal (msgids: the pages translate them).
STATES = ("online", "offline", "unknown", DRAINING, DECOMMISSIONED)


@dataclass(frozen=True, slots=True)
class GatewayView:
    gateway_id: str
    branch_id: str
    state: str  # online | offline | unknown (a trusted key, no status yet)
    last_seen: datetime | None  # the last status received
    offline_since: datetime | None
    fingerprints: tuple[str, ...]
    pending: int | None  # the outbox's counts in the newest birth
    unconfirmed: int | None
    seqs_behind: int | None  # the gateway's last seq less the newest the center holds
    seqs_missing: int


@dataclass(frozen=True, slots=True)
class TerminalView:
    branch_id: str
    terminal_id: str
    gateway_id: str
    state: str  # online | offline | draining | decommissioned
    profile: str
    driver: str
    last_change: datetime


@dataclass(frozen=True, slots=True)
class CenterTotal:
    """The center's own count of a terminal's events of one status."""

    status: str
    currency: str
    count: int
    amount_minor: int


@dataclass(frozen=True, slots=True)
class TerminalDetail:
    terminal: TerminalView
    statement: dict[str, Any] | None  # the gateway's final statement
    totals: list[CenterTotal]
    requests: list[DecommissionRequest] = field(default_factory=list)

    @property
    def currency(self) -> str | None:
        """The terminal's currency (the statement carries none), when its
        events at the center are all in one."""
        currencies = {total.currency for total in self.totals}
        return currencies.pop() if len(currencies) == 1 else None


def is_identifier(value: str) -> bool:
    return bool(_IDENTIFIER.match(value))


def gateways(store: CenterStore, config: CenterConfig) -> list[GatewayView]:
    """Every gateway with a trusted key or a status, in id order."""
    keys = trusted_keys(store, config.gateways)
    prints: dict[str, list[str]] = {}
    branches: dict[str, str] = {}
    for key in keys:
        if key.revoked_at is None:
            prints.setdefault(key.gateway_id, []).append(key.fingerprint)
            branches.setdefault(key.gateway_id, key.branch_id)
    with store.engine.connect() as conn:
        statuses = {str(row["gateway_id"]): row for row in conn.execute(text(
            "SELECT gateway_id, branch_id, state, last_seq, outbox, offline_at, received_at "
            "FROM center_gateway_status ORDER BY gateway_id LIMIT :n"),
            {"n": MAX_LISTED}).mappings()}
        seqs = _seqs(conn)
    names = sorted(set(prints) | set(statuses))[:MAX_LISTED]
    return [_gateway_view(name, statuses.get(name), branches.get(name, ""),
                          tuple(prints.get(name, ())), seqs.get(name)) for name in names]


def _seqs(conn: Connection) -> dict[str, tuple[int, int]]:
    rows = conn.execute(text("SELECT gateway_id, newest_seq, missing FROM center_gateway_seqs "
                             "LIMIT :n"), {"n": MAX_LISTED})
    return {str(gateway): (int(newest), int(missing)) for gateway, newest, missing in rows}


def _gateway_view(name: str, status: Any, branch: str, prints: tuple[str, ...],
                  seqs: tuple[int, int] | None) -> GatewayView:
    newest, missing = seqs if seqs is not None else (None, 0)
    if status is None:
        return GatewayView(name, branch, "unknown", None, None, prints, None, None, None,
                           missing)
    outbox = json.loads(status["outbox"]) if status["outbox"] else {}
    behind = None if newest is None else max(0, int(status["last_seq"]) - newest)
    return GatewayView(
        name, str(status["branch_id"]), str(status["state"]),
        parse_stamp(str(status["received_at"])),
        parse_stamp(str(status["offline_at"])) if status["offline_at"] else None,
        prints, outbox.get("pending"), outbox.get("published_unconfirmed"), behind, missing)


def terminals(engine: Engine) -> dict[str, list[TerminalView]]:
    """Per branch, its terminals in id order."""
    with engine.connect() as conn:
        rows = list(conn.execute(text(
            f"{_TERMINAL_SELECT} ORDER BY branch_id, terminal_id LIMIT :n"),
            {"n": MAX_LISTED}).mappings())
        draining = _draining(conn)
    by_branch: dict[str, list[TerminalView]] = {}
    for row in rows:
        view = _terminal_view(row, draining)
        by_branch.setdefault(view.branch_id, []).append(view)
    return by_branch


def _draining(conn: Connection) -> set[tuple[str, str]]:
    """Terminals the console sent a decommission to (delivered to the broker)."""
    rows = conn.execute(text(f"SELECT DISTINCT branch_id, terminal_id FROM "
                             f"{DecommissionRequest.__tablename__} "
                             "WHERE outcome IN ('sent', 'done') LIMIT :n"), {"n": MAX_LISTED})
    return {(str(branch), str(terminal)) for branch, terminal in rows}


def _terminal_view(row: Any, draining: set[tuple[str, str]]) -> TerminalView:
    state = str(row["state"])
    if state != DECOMMISSIONED and (row["branch_id"], row["terminal_id"]) in draining:
        state = DRAINING
    return TerminalView(str(row["branch_id"]), str(row["terminal_id"]), str(row["gateway_id"]),
                        state, str(row["profile"] or ""), str(row["driver"] or ""),
                        parse_stamp(str(row["occurred_at"])))


def terminal_detail(engine: Engine, branch: str, terminal: str) -> TerminalDetail | None:
    params = {"b": branch, "t": terminal}
    with engine.connect() as conn:
        row = conn.execute(text(f"{_TERMINAL_SELECT} WHERE branch_id = :b AND "
                                "terminal_id = :t"), params).mappings().first()
        if row is None:
            return None
        draining = _draining(conn)
        # (terminal_id, stan) is indexed: the terminal's events, grouped in SQL.
        totals = [CenterTotal(str(s), str(c), int(n), int(a)) for s, c, n, a in conn.execute(
            text("SELECT status, currency, count(*), coalesce(sum(amount_minor), 0) "
                 "FROM center_events WHERE terminal_id = :t AND branch_id = :b "
                 "GROUP BY status, currency ORDER BY status, currency"), params)]
    statement = json.loads(row["statement"]) if row["statement"] else None
    return TerminalDetail(_terminal_view(row, draining), statement, totals,
                          decommission_requests(engine, branch, terminal))


def decommission_requests(engine: Engine, branch: str, terminal: str
                          ) -> list[DecommissionRequest]:
    with Session(engine, expire_on_commit=False) as session:
        query = (select(DecommissionRequest)
                 .where(DecommissionRequest.branch_id == branch,
                        DecommissionRequest.terminal_id == terminal)
                 .order_by(col(DecommissionRequest.id).desc()).limit(20))
        return list(session.scalars(query))
