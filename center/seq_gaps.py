"""Which of a gateway's seqs never reached the center.

A gateway numbers everything its outbox sends with one `seq` (transaction
events, batch reports, terminal statuses, cases, command replies). The
center stores the first two and records the seq of the others
(center_seen_seqs), so a seq missing below the newest one is a message the
center never got: lost by a broker, or taken by someone with the center's
session (issue 17, finding 4: 298 `tx` acknowledged by a thief, and
nobody noticed).

Nothing is added to the batch path but the seen-seq insert. Every `check_s`
seconds a check reads, per trusted gateway, only the seqs above its
`contiguous_through` mark (an index range on (gateway_id, seq)), so a check
costs what arrived since the last one. Messages arrive out of order and are
redelivered: a seq counts as missing only once it has been missing for
`settle_s`, and stops counting when it arrives. The result per gateway is
kept in center_gateway_seqs (`posgw center gateways list` shows it), logged
when it changes, and summed in `missing_total`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from posgw.center.db import CenterStore
from posgw.center.models import GatewaySeqs

log = logging.getLogger(__name__)

#: A redelivery or a reordering settles within seconds; a minute is generous.
DEFAULT_SETTLE_S = 60
#: A transaction event is published again until the center confirms it, so
#: it arrives within the gateway's outage; a status or case the broker lost
#: never does. Past this, a missing seq is counted as lost and left behind.
GIVE_UP_S = 24 * 3600
#: How often the seqs are checked (more often with a shorter settling time).
CHECK_S = 10.0
#: Seqs read per gateway per check at most; the rest waits for the next one.
SCAN_LIMIT = 50_000
#: Missing seqs named in a log line.
SHOWN_MISSING = 5


async def watch(watcher: SeqGapWatcher) -> None:
    """Check every few seconds until cancelled (a database error is logged
    and the next check tries again)."""
    interval = max(0.2, min(CHECK_S, watcher.settle_s / 2))
    while True:
        try:
            await asyncio.to_thread(watcher.check)
        except SQLAlchemyError as exc:
            log.warning("seq gap check: %s", exc)
        await asyncio.sleep(interval)  # a timer, not a wait for something


class SeqGapWatcher:
    def __init__(self, store: CenterStore, gateway_ids: Callable[[], Iterable[str]], *,
                 settle_s: float = DEFAULT_SETTLE_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        self._gateway_ids = gateway_ids
        self.settle_s = settle_s
        self._clock = clock
        #: gateway_id -> {missing seq: when first seen missing}
        self._open: dict[str, dict[int, float]] = {}
        self.missing: dict[str, int] = {}  # settled missing seqs per gateway

    @property
    def missing_total(self) -> int:
        return sum(self.missing.values())

    def check(self) -> None:
        """Blocking (database reads): run it in a worker thread."""
        with self._store.engine.begin() as conn:
            sources = _seq_sources(conn)
            for gateway_id in sorted(set(self._gateway_ids())):
                self._check_gateway(conn, sources, gateway_id)

    def _check_gateway(self, conn: Connection, sources: list[str], gateway_id: str) -> None:
        row = conn.execute(text("SELECT contiguous_through FROM center_gateway_seqs "
                                "WHERE gateway_id = :g"), {"g": gateway_id}).first()
        mark = int(row[0]) if row is not None else _first_seq(conn, sources, gateway_id)
        if mark is None:
            return  # nothing from this gateway yet
        seqs = _seqs_above(conn, sources, gateway_id, mark)
        if not seqs and row is not None and not self._open.get(gateway_id):
            return  # nothing new, nothing open: the common case
        missing, _ = _walk(mark, seqs)
        now = self._clock()
        opened = self._open.get(gateway_id, {})
        since = {seq: opened.get(seq, now) for seq in missing}
        # Missing for a day: given up on (counted as lost), so the mark can
        # pass it and later checks stop reading what lies above it.
        lost = [seq for seq, at in since.items() if now - at >= GIVE_UP_S]
        missing, mark = _walk(mark, sorted([*seqs, *lost]))
        self._open[gateway_id] = {seq: since[seq] for seq in missing}
        settled = sorted(seq for seq, at in self._open[gateway_id].items()
                         if now - at >= self.settle_s)
        self._report(gateway_id, settled, lost)
        _save(conn, gateway_id, mark, seqs[-1] if seqs else mark, len(settled), len(lost),
              row is None)

    def _report(self, gateway_id: str, settled: list[int], lost: list[int]) -> None:
        if lost:
            log.error("gateway %s: gave up waiting for %d seq(s) missing for %g h (%s): "
                      "counted as lost", gateway_id, len(lost), GIVE_UP_S / 3600,
                      ", ".join(str(seq) for seq in lost[:SHOWN_MISSING]))
        before = self.missing.get(gateway_id, 0)
        self.missing[gateway_id] = len(settled)
        if len(settled) > before:
            shown = ", ".join(str(seq) for seq in settled[:SHOWN_MISSING])
            log.warning("gateway %s: %d seq(s) never arrived (%s%s), missing for over %g s: "
                        "lost by the broker, or taken by another client of the center's "
                        "session", gateway_id, len(settled), shown,
                        ", ..." if len(settled) > SHOWN_MISSING else "", self.settle_s)
        elif before and not settled:
            log.info("gateway %s: every missing seq has arrived", gateway_id)


def seq_report(store: CenterStore | None) -> dict[str, tuple[int, int, int]]:
    """gateway_id -> (missing, lost, newest seq) as the last check left them."""
    if store is None or not inspect(store.engine).has_table(GatewaySeqs.__tablename__):
        return {}
    with store.engine.connect() as conn:
        rows = conn.execute(text("SELECT gateway_id, missing, lost, newest_seq FROM "
                                 f"{GatewaySeqs.__tablename__}"))
        return {str(g): (int(m), int(lost), int(n)) for g, m, lost, n in rows}


def _walk(mark: int, seqs: list[int]) -> tuple[list[int], int]:
    """(the seqs missing between `mark` and the last of `seqs`, the new mark:
    the highest seq up to which nothing is missing)."""
    missing: list[int] = []
    expected = mark + 1
    for seq in seqs:
        if seq > expected:
            missing.extend(range(expected, seq))
        expected = seq + 1
        if not missing:
            mark = seq
    return missing, mark


def _seq_sources(conn: Connection) -> list[str]:
    """The tables holding a gateway's seqs, each with (gateway_id, seq) indexed."""
    if conn.dialect.name == "postgresql":
        partitioned = conn.execute(text("SELECT to_regclass('center_event_ids')")).scalar()
        events = "center_event_ids" if partitioned else "center_events"
    else:
        events = "center_events"
    return [events, "center_reconciliations", "center_seen_seqs"]


def _union(sources: list[str], where: str) -> str:
    return " UNION ".join(f"SELECT seq FROM {table} WHERE gateway_id = :g{where}"
                          for table in sources)


def _first_seq(conn: Connection, sources: list[str], gateway_id: str) -> int | None:
    """One below the gateway's lowest seq held: a center started after its
    gateways counts nothing before its first message as missing."""
    first = conn.execute(text(f"SELECT min(seq) FROM ({_union(sources, '')}) AS s"),
                         {"g": gateway_id}).scalar()
    return None if first is None else int(first) - 1


def _seqs_above(conn: Connection, sources: list[str], gateway_id: str, mark: int) -> list[int]:
    query = text(f"SELECT seq FROM ({_union(sources, ' AND seq > :m')}) AS s "
                 "ORDER BY seq LIMIT :n")
    return [int(seq) for seq in conn.execute(query, {"g": gateway_id, "m": mark,
                                                     "n": SCAN_LIMIT}).scalars()]


def _save(conn: Connection, gateway_id: str, mark: int, newest: int, missing: int,
          lost: int, new: bool) -> None:
    values = {"g": gateway_id, "m": mark, "n": newest, "x": missing, "l": lost,
              "t": datetime.now(UTC)}
    table = GatewaySeqs.__tablename__
    if new:
        conn.execute(text(f"INSERT INTO {table} (gateway_id, contiguous_through, newest_seq, "
                          "missing, lost, checked_at) VALUES (:g, :m, :n, :x, :l, :t)"), values)
        return
    larger = "greatest" if conn.dialect.name == "postgresql" else "max"
    conn.execute(text(f"UPDATE {table} SET contiguous_through = :m, "
                      f"newest_seq = {larger}(newest_seq, :n), missing = :x, "
                      "lost = lost + :l, checked_at = :t WHERE gateway_id = :g"), values)
