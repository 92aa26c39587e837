"""After a restart: the risk windows, the retransmit cache and the RRN serial from the ledger."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from posgw.drivers.clock import Clock
from posgw.gateway.pipeline.outcome import RRN_LENGTH, RrnSource, rrn_day_prefix
from posgw.gateway.pipeline.replay import DEFAULT_RECENT, RecentResponses, RequestKey
from posgw.gateway.risk import Attempt, RiskEngine
from posgw.gateway.store import Store
from posgw.gateway.store.store import RecentRow
from posgw.protocols.contract import REVERSED, VOIDED
from posgw.protocols.normalize import (
    ACTION_CODES_1993,
    RESPONSE_CODES_1987,
    ResponseCategory,
    TxKind,
    category_for,
)

log = logging.getLogger(__name__)

#: Rows read at most: the retransmit cache's size (the risk windows need fewer).
WARM_UP_ROWS = DEFAULT_RECENT
#: Retransmits come within a terminal's response timeout (minutes at most).
RETRANSMIT_HORIZON = timedelta(hours=1)
#: Field 39 values that mean a wrong PIN, in either ISO 8583 version.
WRONG_PIN_CODES = frozenset(
    code for table in (RESPONSE_CODES_1987, ACTION_CODES_1993)
    for code, category in table.items() if category is ResponseCategory.INCORRECT_PIN)


def warm_up(store: Store, risk: RiskEngine, recent: RecentResponses, clock: Clock) -> None:
    now = clock.utc_now()
    since = now - max(timedelta(seconds=risk.lookback_s), RETRANSMIT_HORIZON)
    rows = store.recent_ledger(since, WARM_UP_ROWS)
    wrong_pins = _older_wrong_pins(store, risk, now, rows)
    for row in [*wrong_pins, *rows]:
        if row.pan_token:
            risk.record(_attempt(row))
            if row.status in (REVERSED, VOIDED) and row.original_event_id:
                risk.undo(row.original_event_id, card=row.pan_token, terminal=row.terminal_id)
        if row.stan:
            recent.remember(RequestKey(row.terminal_id, row.message_class, row.stan,
                                       row.transmission_time), row.response_fields)
    log.info("warmed up from %d ledger rows since %s and %d older wrong PINs", len(rows),
             since.isoformat(), len(wrong_pins))


def rrn_source(store: Store, clock: Clock) -> RrnSource:
    """RRNs that continue past the highest one the ledger holds for today."""
    now = clock.utc_now()
    return RrnSource(now, store.highest_rrn(rrn_day_prefix(now), RRN_LENGTH))


def _older_wrong_pins(store: Store, risk: RiskEngine, now: datetime,
                      rows: list[RecentRow]) -> list[RecentRow]:
    """Wrong PINs count for a day, longer than the other windows look back:
    those of them that `rows` (the newest rows) does not reach, oldest first."""
    if not risk.wrong_pin_lookback_s:
        return []
    wrong_pins = store.recent_ledger(now - timedelta(seconds=risk.wrong_pin_lookback_s),
                                     WARM_UP_ROWS, response_codes=WRONG_PIN_CODES)
    replayed = {row.event_id for row in rows}
    return [row for row in wrong_pins if row.event_id not in replayed]


def _attempt(row: RecentRow) -> Attempt:
    outcome = category_for(row.response_code) if row.response_code else None
    return Attempt(row.event_id, row.pan_token or "", row.terminal_id, row.amount_minor,
                   row.occurred_at.timestamp(), TxKind(row.kind), outcome)
