"""After a restart: the risk windows and the retransmit cache from the ledger."""

from __future__ import annotations

import logging
from datetime import timedelta

from drivers.clock import Clock
from gateway.pipeline.replay import DEFAULT_RECENT, RecentResponses, RequestKey
from gateway.risk import Attempt, RiskEngine
from gateway.store import Store
from gateway.store.store import RecentRow
from protocols.normalize import TxKind, category_for

log = logging.getLogger(__name__)

#: Rows read at most: the retransmit cache's size (the risk windows need fewer).
WARM_UP_ROWS = DEFAULT_RECENT
#: Retransmits come within a terminal's response timeout (minutes at most).
RETRANSMIT_HORIZON = timedelta(hours=1)


def warm_up(store: Store, risk: RiskEngine, recent: RecentResponses, clock: Clock) -> None:
    now = clock.utc_now()
    horizon = max(timedelta(seconds=risk.settings.longest_window_s), RETRANSMIT_HORIZON)
    rows = store.recent_ledger(now - horizon, WARM_UP_ROWS)
    for row in rows:
        if row.pan_token:
            risk.record(_attempt(row))
            if row.status in ("reversed", "voided") and row.original_event_id:
                risk.undo(row.original_event_id, card=row.pan_token, terminal=row.terminal_id)
        if row.stan:
            recent.remember(RequestKey(row.terminal_id, row.message_class, row.stan,
                                       row.transmission_time), row.response_fields)
    log.info("warmed up from %d ledger rows since %s", len(rows), (now - horizon).isoformat())


def _attempt(row: RecentRow) -> Attempt:
    outcome = category_for(row.response_code) if row.response_code else None
    return Attempt(row.event_id, row.pan_token or "", row.terminal_id, row.amount_minor,
                   row.occurred_at.timestamp(), TxKind(row.kind), outcome)
