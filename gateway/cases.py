"""Freeze cases: held funds released to the merchant or returned to the card.

A frozen approval opens a case (in the same commit as the transaction, see
pipeline/records.py). The center settles it by command:

- `release`: the held sale is re-cleared. A new ledger row and `tx` event,
  status `settled`, referencing the frozen one (`original_event_id`).
- `return_to_card`: the money goes back to the card. A new ledger row and
  `tx` event, status `refund`, referencing the frozen one.

Either way a `case.v1` event goes out on the branch's `cases` topic and the
case row changes status. The new ledger row's retransmit key is the frozen
row's with message class "R" (resolution), so doing it twice — a repeated
command, a crash between the two writes — creates nothing new: the second
attempt meets the unique key and only finishes the case update.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sqlmodel import select

from drivers.clock import Clock
from gateway.forward.events import case_event, new_event_id, outbox_row
from gateway.forward.topics import cases_topic, tx_topic
from gateway.pipeline import GatewayIdentity
from gateway.store import DuplicateRequest, FreezeCase, GroupCommitter, LedgerEntry, Store
from gateway.store.rows import TableRow, table_row

log = logging.getLogger(__name__)

RESOLUTION_CLASS = "R"
_OUTCOME = {"release": ("released", "settled"), "return_to_card": ("returned", "refund")}


class CaseService:
    def __init__(self, store: Store, committer: GroupCommitter, identity: GatewayIdentity,
                 clock: Clock) -> None:
        self._store = store
        self._committer = committer
        self._identity = identity
        self._clock = clock

    async def resolve(self, case_id: str, action: str) -> tuple[str, str]:
        """`action` is release or return_to_card; returns (outcome, detail) for the reply."""
        case_status, tx_status = _OUTCOME[action]
        found = await asyncio.to_thread(self._load, case_id)
        if found is None:
            return "not_found", f"no freeze case {case_id!r}"
        case, frozen = found
        if case.status not in ("open", case_status):
            return "rejected", f"case {case_id} is already {case.status}"
        try:
            await self._committer.commit(*self._rows(case, frozen, case_status, tx_status))
        except DuplicateRequest:
            log.info("case %s was already %s; finishing the case update", case_id, case_status)
        await asyncio.to_thread(self._mark, case_id, case_status)
        return "done", f"case {case_id} {case_status}: {frozen.amount_minor} {frozen.currency}"

    def _load(self, case_id: str) -> tuple[FreezeCase, LedgerEntry] | None:
        with self._store.session() as session:
            case = session.get(FreezeCase, case_id)
            if case is None:
                return None
            frozen = session.scalars(select(LedgerEntry).where(
                LedgerEntry.event_id == case.id.removeprefix("case-"))).first()
        return (case, frozen) if frozen is not None else None

    def _rows(self, case: FreezeCase, frozen: LedgerEntry, case_status: str,
              tx_status: str) -> tuple[TableRow, TableRow, TableRow]:
        ident, now, event_id = self._identity, self._clock.utc_now(), new_event_id()
        values: dict[str, Any] = {
            **frozen.model_dump(exclude={"id"}), "event_id": event_id, "status": tx_status,
            "message_class": RESOLUTION_CLASS, "original_event_id": frozen.event_id,
            "occurred_at": now, "kind": "refund" if tx_status == "refund" else frozen.kind}
        payload = {key: values[key] for key in _TX_FIELDS}
        payload.update({"event_id": event_id, "schema": "tx-event.v1",
                        "branch_id": ident.branch_id, "gateway_id": ident.gateway_id,
                        "occurred_at": now.isoformat().replace("+00:00", "Z"),
                        "risk": list(frozen.risk)})
        ledger = table_row(LedgerEntry, **values)
        tx = outbox_row(payload, topic=tx_topic(ident.topic_prefix, ident.branch_id,
                                                frozen.terminal_id),
                        clock=self._clock, terminal_id=frozen.terminal_id)
        notice = case_event(case.id, case_status, terminal_id=case.terminal_id, rule=case.rule,
                            pan_token=case.pan_token, amount_minor=frozen.amount_minor,
                            currency=frozen.currency,
                            tx_event_ids=[frozen.event_id, event_id],
                            branch_id=ident.branch_id, gateway_id=ident.gateway_id,
                            occurred_at=now)
        return ledger, tx, outbox_row(notice, topic=cases_topic(ident.topic_prefix,
                                                               ident.branch_id),
                                      clock=self._clock)

    def _mark(self, case_id: str, status: str) -> None:
        with self._store.writing() as session:
            case = session.get(FreezeCase, case_id)
            if case is not None:
                case.status = status
                case.updated_at = self._clock.utc_now()


#: The tx-event.v1 fields a resolution copies from its ledger row.
_TX_FIELDS = ("status", "kind", "terminal_id", "merchant_id", "stan", "rrn", "auth_code",
              "response_code", "amount_minor", "currency", "pan_masked", "pan_token",
              "entry_mode", "original_event_id")
