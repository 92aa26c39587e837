"""Freeze cases: held funds released to the merchant or returned to the card.

A frozen approval opens a case (in the same commit as the transaction, see
pipeline/records.py) with its deadlines (case_policy.py). Then:

- `submit_evidence`: a file's metadata (sha256, size, name, who) is
  recorded; the first one moves the case from open to evidence_submitted.
  The bytes are in the evidence store (evidence.py) when `posgw cases
  evidence` submitted them, or at head office when the center did.
- `release`: the held sale is re-cleared. A new ledger row and `tx` event,
  status `settled`, referencing the frozen one (`original_event_id`).
- `return_to_card`: the money goes back to the card. A new ledger row and
  `tx` event, status `refund`, referencing the frozen one.
- `expire` (a command, or the daemon's sweep once `expires_at` has passed):
  the same as a return to the card, ending in `expired`. A sale past the
  schemes' presentment window cannot be cleared safely any more, and a
  suspected fraud must not be paid out by default (case_policy.py).
- Overdue: still open past its first-response due time. The sweep sends one
  notice (`open`, `overdue: true`) so head office hears of it.

Every transition sends a `case.v1` event on the branch's `cases` topic, in
the same commit as what it records. The resolution's ledger row has the
frozen row's retransmit key with message class "R" (resolution), so doing
it twice — a repeated command, a crash between the commit and the case
update — creates nothing new: the second attempt meets the unique key and
only finishes the case update, as the ledger's resolution says.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlmodel import col, select

from posgw.drivers.clock import Clock
from posgw.gateway.case_policy import (
    EVIDENCE_SUBMITTED,
    EXPIRED,
    OPEN,
    RELEASED,
    RETURNED,
    UNRESOLVED,
    CaseDeadlines,
    is_overdue,
)
from posgw.gateway.evidence import EvidenceError, EvidenceItem, EvidenceStore
from posgw.gateway.forward.events import new_event_id, outbox_row
from posgw.gateway.identity import GatewayIdentity
from posgw.gateway.metrics import GatewayMetrics
from posgw.gateway.security.vault import CardVault, VaultError
from posgw.gateway.store import DuplicateRequest, FreezeCase, GroupCommitter, LedgerEntry, Store
from posgw.gateway.store.errors import OutboxFull
from posgw.gateway.store.models import CaseEvidence
from posgw.gateway.store.rows import TableRow, table_row
from posgw.protocols.contract import (
    EXPIRE,
    REFUND,
    RELEASE,
    RETURN_TO_CARD,
    SETTLED,
    TX_EVENT_SCHEMA,
    case_event,
    cases_topic,
    tx_topic,
    utc_iso,
)
from posgw.protocols.currency import format_amount

log = logging.getLogger(__name__)

RESOLUTION_CLASS = "R"
#: Command → (the case status it ends in, the status of the resolution's tx event).
_OUTCOME = {RELEASE: (RELEASED, SETTLED), RETURN_TO_CARD: (RETURNED, REFUND),
            EXPIRE: (EXPIRED, REFUND)}
#: How often the daemon looks for cases to expire or to report overdue: the
#: deadlines are hours and days, so a minute late is on time.
SWEEP_INTERVAL_S = 60.0

Outcome = tuple[str, str]  # (command-reply outcome, detail)


class CaseService:
    def __init__(self, store: Store, committer: GroupCommitter, identity: GatewayIdentity,
                 clock: Clock, vault: CardVault | None = None, *,
                 evidence: EvidenceStore | None = None,
                 metrics: GatewayMetrics | None = None) -> None:
        self._metrics = metrics  # a resolution is a ledger row too: counted by status
        self._vault = vault  # the frozen sales' cards (security/vault.py)
        self._evidence = evidence  # files submitted at this gateway, by hash
        self._store = store
        self._committer = committer
        self._identity = identity
        self._clock = clock

    # -- resolutions: release, return to the card, expire ----------------------------

    async def resolve(self, case_id: str, action: str) -> Outcome:
        """`action` is release, return_to_card or expire."""
        case_status, tx_status = _OUTCOME[action]
        found = await asyncio.to_thread(self._load, case_id)
        if found is None:
            return "not_found", f"no freeze case {case_id!r}"
        case, frozen = found
        if case.status not in (*UNRESOLVED, case_status):
            return "rejected", f"case {case_id} is already {case.status}"
        recovered = ""
        if tx_status == REFUND and case.status in UNRESOLVED and self._vault is not None:
            try:  # money goes back only to a card the vault can still open
                recovered = "; " + await asyncio.to_thread(self._vault.recoverable,
                                                           frozen.event_id)
            except VaultError as exc:
                return "rejected", f"case {case_id}: {exc}"
        try:
            await self._committer.commit(*self._resolution_rows(case, frozen, case_status,
                                                                tx_status))
            if self._metrics is not None:
                self._metrics.recorded(tx_status)
        except OutboxFull as exc:
            return "rejected", f"case {case_id} not resolved: {exc}"
        except DuplicateRequest:
            earlier = await asyncio.to_thread(self._earlier_resolution, frozen)
            if earlier is not None and earlier != tx_status:
                final = RELEASED if earlier == SETTLED else RETURNED
                await asyncio.to_thread(self._mark, case_id, final, UNRESOLVED)
                return "rejected", f"case {case_id} is already {final}"
            log.info("case %s was already %s; finishing the case update", case_id, case_status)
        await asyncio.to_thread(self._mark, case_id, case_status, UNRESOLVED)
        if self._vault is not None:  # resolved: the card is not needed any more
            await asyncio.to_thread(self._vault.shred, frozen.event_id)
        shown = format_amount(frozen.amount_minor, frozen.currency)  # 4000 EUR: "40.00"
        return "done", f"case {case_id} {case_status}: {shown} {frozen.currency}{recovered}"

    def _resolution_rows(self, case: FreezeCase, frozen: LedgerEntry, case_status: str,
                         tx_status: str) -> tuple[TableRow, TableRow, TableRow]:
        ident, now, event_id = self._identity, self._clock.utc_now(), new_event_id()
        values: dict[str, Any] = {
            **frozen.model_dump(exclude={"id"}), "event_id": event_id, "status": tx_status,
            "message_class": RESOLUTION_CLASS, "original_event_id": frozen.event_id,
            "occurred_at": now, "kind": "refund" if tx_status == REFUND else frozen.kind}
        payload = {key: values[key] for key in _TX_FIELDS}
        payload.update({"event_id": event_id, "schema": TX_EVENT_SCHEMA,
                        "branch_id": ident.branch_id, "gateway_id": ident.gateway_id,
                        "occurred_at": utc_iso(now), "risk": list(frozen.risk)})
        ledger = table_row(LedgerEntry, **values)
        tx = outbox_row(payload, topic=tx_topic(ident.topic_prefix, ident.branch_id,
                                                frozen.terminal_id),
                        clock=self._clock, terminal_id=frozen.terminal_id)
        notice = self._notice(case, frozen, case_status, [frozen.event_id, event_id], now)
        return ledger, tx, notice

    def _earlier_resolution(self, frozen: LedgerEntry) -> str | None:
        """The tx status of the resolution already in the ledger, if any."""
        with self._store.session() as session:
            return session.scalars(select(LedgerEntry.status).where(
                LedgerEntry.original_event_id == frozen.event_id,
                LedgerEntry.message_class == RESOLUTION_CLASS)).first()

    # -- evidence -------------------------------------------------------------------

    async def submit_evidence(self, case_id: str, evidence: object) -> Outcome:
        """Record one evidence file's metadata (a `submit_evidence` command)."""
        try:
            item = EvidenceItem.from_command(evidence)
        except EvidenceError as exc:
            return "rejected", str(exc)
        found = await asyncio.to_thread(self._load, case_id)
        if found is None:
            return "not_found", f"no freeze case {case_id!r}"
        case, frozen = found
        if case.status not in UNRESOLVED:
            return "rejected", f"case {case_id} is already {case.status}: it takes no evidence"
        if item.held_at == "gateway" and not await asyncio.to_thread(self._stored_here, item):
            return "rejected", (f"sha256 {item.sha256} is not in this gateway's evidence "
                                "store (or no longer matches it)")
        if await asyncio.to_thread(self._has_evidence, case_id, item.sha256):
            return "done", f"case {case_id} already has {item.filename} (sha256 {item.sha256})"
        now = self._clock.utc_now()
        row = table_row(CaseEvidence, case_id=case_id, submitted_at=now, **item.as_dict())
        notice = self._notice(case, frozen, EVIDENCE_SUBMITTED, [frozen.event_id], now,
                              evidence={**item.as_dict(), "submitted_at": utc_iso(now)})
        await self._committer.commit(None, None, row, notice)  # never refused by the cap
        await asyncio.to_thread(self._mark, case_id, EVIDENCE_SUBMITTED, (OPEN,))
        return "done", (f"case {case_id}: {item.filename} recorded, {item.size_bytes} bytes, "
                        f"sha256 {item.sha256}, held at the {item.held_at}")

    def _stored_here(self, item: EvidenceItem) -> bool:
        return self._evidence is not None and self._evidence.holds(item)

    def _has_evidence(self, case_id: str, sha256: str) -> bool:
        with self._store.session() as session:
            return session.scalars(select(CaseEvidence.id).where(
                CaseEvidence.case_id == case_id, CaseEvidence.sha256 == sha256)).first() is not None

    # -- housekeeping: expiry and overdue notices -------------------------------------

    async def housekeeping(self, interval_s: float = SWEEP_INTERVAL_S) -> None:
        """The daemon's task: sweep now (catching up after downtime), then periodically."""
        while True:
            try:
                await self.sweep()
            except Exception:  # a task boundary: log it, keep the daemon, retry next time
                log.exception("case housekeeping failed; retrying in %.0f s", interval_s)
            await asyncio.sleep(interval_s)  # a timer, not a synchronisation

    async def sweep(self) -> list[tuple[str, str]]:
        """Expire what is past `expires_at`; notify what is newly overdue.
        Returns (case id, what was done) for each case touched."""
        now = self._clock.utc_now()
        expiring, overdue = await asyncio.to_thread(self._due, now)
        done: list[tuple[str, str]] = []
        for case_id in expiring:
            outcome, detail = await self.resolve(case_id, "expire")
            log.warning("case %s unresolved past its expiry: %s (%s)", case_id, outcome, detail)
            done.append((case_id, EXPIRED if outcome == "done" else outcome))
        for case_id in overdue:
            if await self._notify_overdue(case_id, now):
                log.warning("case %s is overdue: no response since it opened", case_id)
                done.append((case_id, "overdue"))
        return done

    def _due(self, now: datetime) -> tuple[list[str], list[str]]:
        status, expires, due = (col(FreezeCase.status), col(FreezeCase.expires_at),
                                col(FreezeCase.first_response_due_at))
        with self._store.session() as session:
            expiring = list(session.scalars(select(FreezeCase.id).where(
                status.in_(UNRESOLVED), expires <= now).order_by(expires)))
            overdue = list(session.scalars(select(FreezeCase.id).where(
                status == OPEN, due <= now, col(FreezeCase.overdue_notified_at).is_(None))
                .order_by(due)))
        return expiring, [case_id for case_id in overdue if case_id not in expiring]

    async def _notify_overdue(self, case_id: str, now: datetime) -> bool:
        found = await asyncio.to_thread(self._load, case_id)
        if found is None or not is_overdue(found[0].status, found[0].first_response_due_at,
                                           now):
            return False
        case, frozen = found
        # Sent, then marked: a crash in between repeats the notice, never loses it.
        await self._committer.commit(None, None, self._notice(case, frozen, OPEN,
                                                              [frozen.event_id], now))
        await asyncio.to_thread(self._mark_notified, case_id, now)
        return True

    # -- rows and reads ---------------------------------------------------------------

    def _notice(self, case: FreezeCase, frozen: LedgerEntry, status: str,
                tx_event_ids: Sequence[str], now: datetime,
                evidence: dict[str, Any] | None = None) -> TableRow:
        ident = self._identity
        payload = case_event(case.id, status, event_id=new_event_id(),
                             terminal_id=case.terminal_id, rule=case.rule,
                             pan_token=case.pan_token, amount_minor=frozen.amount_minor,
                             currency=frozen.currency, tx_event_ids=tx_event_ids,
                             branch_id=ident.branch_id, gateway_id=ident.gateway_id,
                             occurred_at=now, deadlines=deadlines_of(case), evidence=evidence)
        return outbox_row(payload, topic=cases_topic(ident.topic_prefix, ident.branch_id),
                          clock=self._clock)

    def _load(self, case_id: str) -> tuple[FreezeCase, LedgerEntry] | None:
        with self._store.session() as session:
            case = session.get(FreezeCase, case_id)
            if case is None:
                return None
            frozen = session.scalars(select(LedgerEntry).where(
                LedgerEntry.event_id == case.id.removeprefix("case-"))).first()
        return (case, frozen) if frozen is not None else None

    def _mark(self, case_id: str, status: str, only_from: Sequence[str]) -> None:
        """Move the case to `status` if it is still in one of `only_from`."""
        with self._store.writing() as session:
            case = session.get(FreezeCase, case_id)
            if case is not None and case.status in only_from:
                case.status = status
                case.updated_at = self._clock.utc_now()

    def _mark_notified(self, case_id: str, at: datetime) -> None:
        with self._store.writing() as session:
            case = session.get(FreezeCase, case_id)
            if case is not None:
                case.overdue_notified_at = at


def deadlines_of(case: FreezeCase) -> CaseDeadlines | None:
    if case.first_response_due_at is None or case.expires_at is None:
        return None
    return CaseDeadlines(case.first_response_due_at, case.expires_at)


def case_view(case: FreezeCase, files: Sequence[CaseEvidence], now: datetime) -> dict[str, Any]:
    """A case as `posgw cases list --json` and `show` print it (times UTC)."""
    due, expires = case.first_response_due_at, case.expires_at
    return {"id": case.id, "status": case.status, "terminal_id": case.terminal_id,
            "rule": case.rule, "pan_token": case.pan_token,
            "opened_at": utc_iso(case.opened_at), "updated_at": utc_iso(case.updated_at),
            "first_response_due_at": utc_iso(due) if due else None,
            "overdue": is_overdue(case.status, due, now),
            "expires_at": utc_iso(expires) if expires else None,
            "evidence": case.evidence,
            "evidence_files": [{"sha256": f.sha256, "size_bytes": f.size_bytes,
                                "filename": f.filename, "submitted_by": f.submitted_by,
                                "submitted_at": utc_iso(f.submitted_at), "held_at": f.held_at}
                               for f in files]}


#: The tx-event.v1 fields a resolution copies from its ledger row.
_TX_FIELDS = ("status", "kind", "terminal_id", "merchant_id", "stan", "rrn", "auth_code",
              "response_code", "amount_minor", "currency", "pan_masked", "pan_token",
              "entry_mode", "original_event_id")
