"""One request, from decoded message to the response the terminal hears.

DESIGN.md's data flow, in order: normalize → dedupe → risk (before) →
authorize → risk (after) → ONE durable commit of ledger row + outbox row
(+ freeze case, + reversal advice) → response. The response is returned
only after that commit is on disk (rule 1), so a terminal that heard
"approved" has a transaction the center will get.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from dataclasses import dataclass, replace
from datetime import datetime

from posgw.drivers.clock import Clock
from posgw.drivers.session_limits import ThrottledLog
from posgw.gateway.authorize import Authorization, Authorizer, UpstreamUnavailable
from posgw.gateway.case_policy import DEFAULT_CASE_POLICY, CasePolicy
from posgw.gateway.forward.events import new_event_id, outbox_row
from posgw.gateway.identity import GatewayIdentity
from posgw.gateway.metrics import GatewayMetrics
from posgw.gateway.pipeline.outcome import UNDOING_KINDS, RrnSource, final_status
from posgw.gateway.pipeline.records import advice_row, case_row, ledger_row, vault_row
from posgw.gateway.pipeline.replay import (
    NotRecorded,
    RecentResponses,
    RequestKey,
    replayed,
    stored_fields,
)
from posgw.gateway.pipeline.settlement import ledger_totals, settlement_rows
from posgw.gateway.risk import Action, Attempt, Decision, RiskEngine
from posgw.gateway.security.tokens import PanTokenizer
from posgw.gateway.security.vault import CardVault
from posgw.gateway.store import DuplicateRequest, GroupCommitter, OutboxFull, Store
from posgw.gateway.store.rows import TableRow
from posgw.gateway.terminals import (
    DECOMMISSIONED,
    DRAINING,
    REFUSAL_LOG_INTERVAL_S,
    TerminalLine,
    TerminalRegistry,
)
from posgw.protocols.contract import (
    CASE_OPEN,
    FROZEN,
    REVERSED,
    VOIDED,
    case_event,
    cases_topic,
    tx_event,
    tx_topic,
)
from posgw.protocols.iso8583.message import Message
from posgw.protocols.normalize import (
    ResponseCategory,
    Transaction,
    TxKind,
    build_response,
    normalize,
    response_code_for,
    response_mti,
)
from posgw.protocols.normalize.batch import BatchTotals
from posgw.protocols.normalize.errors import NormalizeError

log = logging.getLogger(__name__)

_NETWORK_KINDS = frozenset({TxKind.SIGN_ON, TxKind.ECHO})
#: Money moves on the card itself: no card, no transaction.
_CARD_KINDS = frozenset({TxKind.PURCHASE, TxKind.PREAUTH, TxKind.COMPLETION, TxKind.REFUND})


@dataclass(slots=True)
class _Decided:
    """What authorization and risk made of one request."""

    authorization: Authorization
    decision: Decision
    reversal: Message | None = None  # a 0420 to queue for the acquirer


class Pipeline:
    def __init__(self, *, store: Store, committer: GroupCommitter, authorizer: Authorizer,
                 risk: RiskEngine, tokenizer: PanTokenizer, registry: TerminalRegistry,
                 identity: GatewayIdentity, clock: Clock,
                 recent: RecentResponses | None = None,
                 metrics: GatewayMetrics | None = None,
                 vault: CardVault | None = None,
                 case_policy: CasePolicy = DEFAULT_CASE_POLICY,
                 rrns: RrnSource | None = None) -> None:
        self._store = store
        self._committer = committer
        self._authorizer = authorizer
        self._risk = risk
        self._tokenizer = tokenizer
        self._registry = registry
        self._identity = identity
        self._clock = clock
        self._recent = recent if recent is not None else RecentResponses()
        self._vault = vault  # frozen sales' PANs, for a return to the card
        self._case_policy = case_policy  # a new case's first-response and expiry deadlines
        self._rrns = rrns if rrns is not None else RrnSource(clock.utc_now())
        self.in_flight = 0
        self.metrics = metrics if metrics is not None else GatewayMetrics()
        #: Made-up ids come by the thousand: one line per interval, with a count.
        self._unknown = ThrottledLog(log, REFUSAL_LOG_INTERVAL_S, clock)

    async def handle(self, request: Message, line: TerminalLine) -> Message:
        """The response to `request`; raises only for a message that has none."""
        try:
            tx = normalize(request)
        except NormalizeError as exc:
            log.warning("request %s rejected: field %s: %s", request.mti, exc.field, exc.reason)
            return _answer(request, ResponseCategory.FORMAT_ERROR)
        # One string per terminal, not one per request: the risk windows and
        # the retransmit cache keep it with every attempt they hold.
        terminal_id = sys.intern(line.terminal_id or tx.terminal_id or "")
        if not terminal_id:
            log.warning("request without a terminal id (field 41) refused")
            return _answer(request, ResponseCategory.FORMAT_ERROR, tx.version)
        if self._refused(terminal_id, line, tx):
            return _answer(request, ResponseCategory.NOT_PERMITTED_TO_TERMINAL, tx.version)
        self._registry.seen(terminal_id, line)
        if tx.kind in _NETWORK_KINDS:  # sign-on, echo: answered here (DESIGN data flow)
            return _answer(request, ResponseCategory.APPROVED, tx.version)
        if tx.kind is TxKind.BATCH_SETTLEMENT:
            return await self._settle(request, tx, terminal_id)
        missing = _missing_mandatory(tx)
        if missing:
            log.warning("%s from %s without %s refused", tx.kind.value, terminal_id, missing)
            return _answer(request, ResponseCategory.FORMAT_ERROR, tx.version)
        key = _request_key(terminal_id, tx)
        if key is None:
            return await self._process(request, tx, terminal_id, line, None)
        return await self._deduplicated(request, tx, terminal_id, line, key)

    def _refused(self, terminal_id: str, line: TerminalLine, tx: Transaction) -> bool:
        """Not permitted to this terminal (58 / 120): a listener that does not
        serve it (nothing is stored of it), or a terminal being retired."""
        if not self._registry.admit(terminal_id, line):
            self._unknown.warning("%s from unknown terminal %s on listener %s refused (58): "
                                  "not in its allow list", tx.kind.value,
                                  terminal_id[:16], line.name)
            return True
        state = self._registry.state(terminal_id)
        if state == DECOMMISSIONED or (state == DRAINING and tx.kind not in UNDOING_KINDS
                                       and tx.kind is not TxKind.REFUND):
            log.warning("%s request from %s terminal %s refused", tx.kind.value, state,
                        terminal_id)
            return True
        return False

    async def _settle(self, request: Message, tx: Transaction, terminal_id: str) -> Message:
        """Compare the terminal's batch with the ledger; close it (settlement.py)."""
        theirs = BatchTotals.from_fields(request, strict=True)
        if theirs is None:
            return _answer(request, ResponseCategory.FORMAT_ERROR, tx.version)
        opened_at = self._registry.batch_opened_at(terminal_id)
        rows = await asyncio.to_thread(self._store.batch_rows, terminal_id, opened_at)
        ours = ledger_totals(rows)
        differences = theirs.money_differences(ours)
        now = self._clock.utc_now()
        await self._committer.commit(None, None, *settlement_rows(
            terminal_id, theirs, ours, opened_at=opened_at, closed_at=now,
            identity=self._identity, clock=self._clock))
        self._registry.open_batch(terminal_id, now)
        if differences:
            log.warning("batch of terminal %s does not reconcile: %s", terminal_id,
                        ", ".join(sorted(differences)))
            return _answer(request, ResponseCategory.RECONCILE_ERROR, tx.version)
        return _answer(request, ResponseCategory.APPROVED, tx.version)

    async def _deduplicated(self, request: Message, tx: Transaction, terminal_id: str,
                            line: TerminalLine, key: RequestKey) -> Message:
        mti = response_mti(request.mti)
        stored = self._recent.get(key)
        if stored is None and (pending := self._recent.in_flight(key)) is not None:
            try:
                stored = await asyncio.shield(pending)  # the same request, being decided now
            except NotRecorded:
                stored = None
        if stored is not None:
            log.info("retransmission %s/%s answered from the ledger", terminal_id, key.stan)
            return replayed(mti, stored)
        self._recent.begin(key)
        response: Message | None = None
        try:
            response = await self._process(request, tx, terminal_id, line, key)
            return response
        finally:
            self._recent.finish(key, stored_fields(response) if response is not None else None)

    async def _process(self, request: Message, tx: Transaction, terminal_id: str,
                       line: TerminalLine, key: RequestKey | None) -> Message:
        self.in_flight += 1
        try:
            return await self._decide_and_record(request, tx, terminal_id, line, key)
        finally:
            self.in_flight -= 1

    async def _decide_and_record(self, request: Message, tx: Transaction, terminal_id: str,
                                 line: TerminalLine, key: RequestKey | None) -> Message:
        if self._committer.outbox_full:
            # Refuse before asking the acquirer: an approval we cannot forward
            # would have to be undone upstream. Never drop an event instead.
            log.error("transaction %s/%s refused: outbox full", terminal_id, tx.stan)
            return _answer(request, ResponseCategory.SYSTEM_ERROR, tx.version)
        now = self._clock.utc_now()
        event_id = new_event_id()
        # Interned as the terminal id is: a card's window holds one string for it.
        token = sys.intern(self._tokenizer.token(tx.card)) if tx.card is not None else None
        attempt = Attempt(event_id, token or "", terminal_id, tx.amount_minor or 0,
                          now.timestamp(), tx.kind)
        original, refused = await self._undone(request, tx, terminal_id)
        # The authorizer decides for the terminal the line names (its limits are by id).
        decided = refused or await self._decide(request, replace(tx, terminal_id=terminal_id),
                                                attempt if token else None)
        authorization = decided.authorization
        frozen = decided.decision.action is Action.FREEZE and authorization.approved
        status = final_status(tx.kind, approved=authorization.approved, frozen=frozen)
        rrn = authorization.rrn or tx.rrn or self._rrns.next(now)
        response = build_response(request, response_code=authorization.response_code,
                                  auth_code=authorization.auth_code, rrn=rrn)
        if status is None:
            return response
        recorded = replace(tx, terminal_id=terminal_id, rrn=rrn,
                           auth_code=authorization.auth_code,
                           response_code=authorization.response_code,
                           merchant_id=tx.merchant_id or line.merchant_id)
        return await self._record(request, recorded, response, decided, status=status,
                                  event_id=event_id, token=token, key=key, original=original)

    async def _undone(self, request: Message, tx: Transaction,
                      terminal_id: str) -> tuple[str | None, _Decided | None]:
        """For a reversal or void: the event it undoes, and the refusal of a
        reversal with nothing to undo ("unable to locate original", 25 / 914)."""
        if tx.kind not in UNDOING_KINDS:
            return None, None
        original = await self._original_event(replace(tx, terminal_id=terminal_id), request)
        if original is not None or tx.kind is not TxKind.REVERSAL:
            return original, None
        log.warning("reversal from %s of unknown STAN %s refused", terminal_id,
                    tx.original_stan)
        return None, _Decided(_local(ResponseCategory.ORIGINAL_NOT_FOUND, tx.version),
                              Decision())

    async def _decide(self, request: Message, tx: Transaction,
                      attempt: Attempt | None) -> _Decided:
        before = self._risk.before(attempt) if attempt is not None else Decision()
        declined_with = before.decline_with
        if declined_with is not None:
            return _Decided(_local(declined_with, tx.version), before)
        reversal = None
        try:
            authorization = await self._authorizer.authorize(tx, request)
        except UpstreamUnavailable as exc:
            log.warning("acquirer unavailable for %s/%s: %s", tx.terminal_id, tx.stan, exc)
            authorization = _local(ResponseCategory.ISSUER_UNAVAILABLE, tx.version)
            reversal = exc.reversal
        after = Decision()
        if attempt is not None:
            after = self._risk.after(replace(attempt, outcome=authorization.response))
        return _Decided(authorization, after, reversal)

    async def _record(self, request: Message, tx: Transaction, response: Message,
                      decided: _Decided, *, status: str, event_id: str, token: str | None,
                      key: RequestKey | None, original: str | None) -> Message:
        now = self._clock.utc_now()
        ident = self._identity
        rules = list(decided.decision.rules)
        payload = tx_event(tx, status=status, event_id=event_id, branch_id=ident.branch_id,
                           gateway_id=ident.gateway_id, pan_token=token, risk=rules,
                           occurred_at=now)
        if original is not None:
            payload["original_event_id"] = original
        ledger = ledger_row(tx, key, status=status, event_id=event_id, token=token,
                            rules=rules, response=stored_fields(response), occurred_at=now,
                            original_event_id=original)
        terminal_id = tx.terminal_id or ""
        outbox = outbox_row(payload, topic=tx_topic(ident.topic_prefix, ident.branch_id,
                                                    terminal_id),
                            clock=self._clock, terminal_id=terminal_id)
        case = (case_row(decided.decision, tx, token, now, self._case_policy.deadlines(now))
                if status == FROZEN else None)
        extra = [row for row in (
            case, self._case_opened(case, tx, event_id, now) if case is not None else None,
            vault_row(self._vault, tx, event_id, now) if case is not None else None,
            advice_row(decided.reversal, tx, now) if decided.reversal is not None else None,
        ) if row is not None]
        try:
            await self._committer.commit(ledger, outbox, *extra)
        except OutboxFull:
            # Filled up between the check in `_decide_and_record` and this commit.
            log.error("transaction %s/%s refused: outbox full", tx.terminal_id, tx.stan)
            return _answer(request, ResponseCategory.SYSTEM_ERROR, tx.version)
        except DuplicateRequest:
            return await self._stored_answer(request, key)
        self.metrics.recorded(status, decided.decision.hits)
        if original is not None and token and status in (REVERSED, VOIDED):
            self._risk.undo(original, card=token, terminal=terminal_id)  # no longer a swipe
        return response

    def _case_opened(self, case: TableRow, tx: Transaction, event_id: str,
                     now: datetime) -> TableRow:
        """The `cases` topic event announcing a freeze case."""
        ident, values = self._identity, case.values
        notice = case_event(values["id"], CASE_OPEN, event_id=new_event_id(),
                            terminal_id=values["terminal_id"],
                            rule=values["rule"], pan_token=values["pan_token"],
                            amount_minor=tx.amount_minor or 0, currency=tx.currency or "",
                            tx_event_ids=[event_id], branch_id=ident.branch_id,
                            gateway_id=ident.gateway_id, occurred_at=now,
                            deadlines=self._case_policy.deadlines(now))
        return outbox_row(notice, topic=cases_topic(ident.topic_prefix, ident.branch_id),
                          clock=self._clock)

    async def _stored_answer(self, request: Message, key: RequestKey | None) -> Message:
        found = None
        if key is not None:
            found = await asyncio.to_thread(self._store.find_request, key.terminal_id, key.stan,
                                            key.transmission_time, key.message_class)
        if found is None:
            return _answer(request, ResponseCategory.DUPLICATE_TRANSMISSION)
        return replayed(response_mti(request.mti), found.response_fields)

    async def _original_event(self, tx: Transaction, request: Message) -> str | None:
        """The event a reversal (field 90's STAN) or a void (the request's field 37,
        the RRN of the sale it cancels) undoes."""
        if not tx.terminal_id:
            return None
        if tx.kind is TxKind.VOID:
            rrn = request.text(37).strip()
            if not rrn:
                return None
            row = await asyncio.to_thread(self._store.find_by_rrn, tx.terminal_id, rrn)
        else:
            if not tx.original_stan:
                return None
            row = await asyncio.to_thread(self._store.find_original, tx.terminal_id,
                                          tx.original_stan)
        return row.event_id if row is not None else None


def _missing_mandatory(tx: Transaction) -> str | None:
    """What a money request lacks to be recorded honestly: a STAN (its
    retransmit key), an amount and, where money moves on a card, the card."""
    if not _is_recorded(tx):
        return None
    if not tx.stan:
        return "a STAN (field 11)"
    if tx.amount_minor is None:
        return "an amount (field 4)"
    if tx.card is None and tx.kind in _CARD_KINDS:
        return "a card (field 2, 35 or 55)"
    return None


def _request_key(terminal_id: str, tx: Transaction) -> RequestKey | None:
    if not tx.stan or not _is_recorded(tx):
        return None
    return RequestKey(terminal_id, tx.mti[1], tx.stan, tx.transmission_time or "")


def _is_recorded(tx: Transaction) -> bool:
    return final_status(tx.kind, approved=False, frozen=False) is not None


def _local(category: ResponseCategory, version: int) -> Authorization:
    return Authorization(category, response_code_for(category, version))


def _answer(request: Message, category: ResponseCategory, version: int | None = None) -> Message:
    if version is None:
        version = 1987 if request.mti[:1] == "0" else 1993
    return build_response(request, response_code=response_code_for(category, version))
