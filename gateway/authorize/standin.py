"""Stand-in processing: approve locally up to a floor limit.

What acquirers call STIP: when the gateway runs without an upstream (the
demo, a branch cut off from its acquirer), purchases and pre-authorizations
up to `floor_limit` are approved with a locally made authorization code;
above it they are declined as over the amount limit (61 / 121). Refunds,
voids and reversals are accepted (they only reduce exposure). A balance
inquiry cannot be answered locally: issuer unavailable (91 / 907).
"""

from __future__ import annotations

import itertools

from posgw.gateway.authorize.base import Authorization
from posgw.protocols.iso8583.message import Message
from posgw.protocols.normalize import ResponseCategory, Transaction, TxKind, response_code_for

_SPENDING = frozenset({TxKind.PURCHASE, TxKind.PREAUTH, TxKind.COMPLETION})
_REDUCING = frozenset({TxKind.REFUND, TxKind.VOID, TxKind.REVERSAL})


class StandInAuthorizer:
    def __init__(self, floor_limit: int) -> None:
        self.floor_limit = floor_limit
        self._auth_numbers = itertools.count(1)

    async def authorize(self, transaction: Transaction, request: Message) -> Authorization:
        return self.decide(transaction)

    def decide(self, transaction: Transaction) -> Authorization:
        amount = transaction.amount_minor or 0
        if transaction.kind in _SPENDING and amount <= self.floor_limit:
            return self._answer(transaction, ResponseCategory.APPROVED, approved=True)
        if transaction.kind in _SPENDING:
            return self._answer(transaction, ResponseCategory.EXCEEDS_AMOUNT_LIMIT)
        if transaction.kind in _REDUCING:
            return self._answer(transaction, ResponseCategory.APPROVED, approved=True)
        return self._answer(transaction, ResponseCategory.ISSUER_UNAVAILABLE)

    def _answer(self, transaction: Transaction, category: ResponseCategory,
                approved: bool = False) -> Authorization:
        code = response_code_for(category, transaction.version)
        # "S" marks a stand-in approval code so the center can tell them apart.
        auth_code = f"S{next(self._auth_numbers) % 100_000:05d}" if approved else None
        return Authorization(category, code, auth_code)
