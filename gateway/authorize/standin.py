"""Stand-in processing: approve locally up to a floor limit.

What acquirers call STIP: when the gateway runs without an upstream (the
demo, a branch cut off from its acquirer), purchases and pre-authorizations
up to `floor_limit` are approved with a locally made authorization code;
above it they are declined as over the amount limit (61 / 121). Voids and
reversals are accepted (they undo a sale of the same terminal). A refund
credits a card with money nobody took from it here, to any card number
typed in: stand-in approves one only for a terminal given its own limit
(`[upstream.refund_limits]`), up to that limit (above it: 61 / 121);
every other terminal's refund is "not permitted to terminal" (58 / 120).
A balance inquiry cannot be answered locally: issuer unavailable (91 / 907).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping

from posgw.gateway.authorize.base import Authorization
from posgw.protocols.iso8583.message import Message
from posgw.protocols.normalize import ResponseCategory, Transaction, TxKind, response_code_for

_SPENDING = frozenset({TxKind.PURCHASE, TxKind.PREAUTH, TxKind.COMPLETION})
_UNDOING = frozenset({TxKind.VOID, TxKind.REVERSAL})


class StandInAuthorizer:
    def __init__(self, floor_limit: int, refund_limits: Mapping[str, int] | None = None) -> None:
        self.floor_limit = floor_limit
        self.refund_limits = dict(refund_limits or {})  # terminal id -> largest refund
        self._auth_numbers = itertools.count(1)

    async def authorize(self, transaction: Transaction, request: Message) -> Authorization:
        return self.decide(transaction)

    def decide(self, transaction: Transaction) -> Authorization:
        amount = transaction.amount_minor or 0
        if transaction.kind in _SPENDING and amount <= self.floor_limit:
            return self._answer(transaction, ResponseCategory.APPROVED, approved=True)
        if transaction.kind in _SPENDING:
            return self._answer(transaction, ResponseCategory.EXCEEDS_AMOUNT_LIMIT)
        if transaction.kind is TxKind.REFUND:
            return self._refund(transaction, amount)
        if transaction.kind in _UNDOING:
            return self._answer(transaction, ResponseCategory.APPROVED, approved=True)
        return self._answer(transaction, ResponseCategory.ISSUER_UNAVAILABLE)

    def _refund(self, transaction: Transaction, amount: int) -> Authorization:
        limit = self.refund_limits.get(transaction.terminal_id or "")
        if limit is None:
            return self._answer(transaction, ResponseCategory.NOT_PERMITTED_TO_TERMINAL)
        if amount > limit:
            return self._answer(transaction, ResponseCategory.EXCEEDS_AMOUNT_LIMIT)
        return self._answer(transaction, ResponseCategory.APPROVED, approved=True)

    def _answer(self, transaction: Transaction, category: ResponseCategory,
                approved: bool = False) -> Authorization:
        code = response_code_for(category, transaction.version)
        # "S" marks a stand-in approval code so the center can tell them apart.
        auth_code = f"S{next(self._auth_numbers) % 100_000:05d}" if approved else None
        return Authorization(category, code, auth_code)
