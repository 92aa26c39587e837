"""The authorizer port and its answer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from posgw.protocols.iso8583.message import Message
from posgw.protocols.normalize import ResponseCategory, Transaction


class UpstreamUnavailable(Exception):
    """No answer from the acquirer: not connected, or no response in time.

    `reversal` is set when the request may have reached the acquirer (it was
    sent, the answer never came): the advice that undoes it there, for the
    pipeline to queue (store-and-forward) since the terminal is told "no".
    """

    def __init__(self, reason: str, reversal: Message | None = None) -> None:
        super().__init__(reason)
        self.reversal = reversal


@dataclass(frozen=True, slots=True)
class Authorization:
    response: ResponseCategory
    response_code: str  # as the terminal's dialect spells it (1987: 2 digits, 1993: 3)
    auth_code: str | None = None
    rrn: str | None = None

    @property
    def approved(self) -> bool:
        return self.response.is_approval


class Authorizer(Protocol):
    async def authorize(self, transaction: Transaction, request: Message) -> Authorization:
        """Decide on one request; may raise UpstreamUnavailable."""
        ...
