"""A freeze case's clock: when it needs a first response, when it expires.

The lifecycle (gateway/cases.py):

    open ──evidence──▶ evidence_submitted ──┬─▶ released   (re-cleared: `settled`)
      │                                     ├─▶ returned   (to the card: `refund`)
      └─────────────────────────────────────┴─▶ expired    (to the card: `refund`)

Both deadlines are fixed when the case opens and stored with it, so a later
change of `[cases]` does not move a promise already made.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

OPEN, EVIDENCE_SUBMITTED = "open", "evidence_submitted"
RELEASED, RETURNED, EXPIRED = "released", "returned", "expired"
#: The sale's funds are still held: neither re-cleared nor returned.
UNRESOLVED = (OPEN, EVIDENCE_SUBMITTED)
RESOLVED = (RELEASED, RETURNED, EXPIRED)

#: The risk desk answers a freeze within a working day (the issue's 24 h).
DEFAULT_FIRST_RESPONSE = timedelta(hours=24)
#: Schemes treat a sale presented for clearing more than 30 days after its
#: authorization as late (Visa dispute condition 12.1, Late Presentment), and
#: the issuer's hold on the cardholder's funds has lapsed long before: past
#: that, a held sale can no longer be cleared safely, so expiry returns it.
DEFAULT_EXPIRE_AFTER = timedelta(days=30)


@dataclass(frozen=True, slots=True)
class CasePolicy:
    first_response: timedelta = DEFAULT_FIRST_RESPONSE
    expire_after: timedelta = DEFAULT_EXPIRE_AFTER

    def deadlines(self, opened_at: datetime) -> CaseDeadlines:
        return CaseDeadlines(opened_at + self.first_response, opened_at + self.expire_after)


@dataclass(frozen=True, slots=True)
class CaseDeadlines:
    first_response_due_at: datetime
    expires_at: datetime


def is_overdue(status: str, first_response_due_at: datetime | None, now: datetime) -> bool:
    """Still open (nobody has responded with evidence or a decision) past its due time."""
    return status == OPEN and first_response_due_at is not None and now >= first_response_due_at


DEFAULT_CASE_POLICY = CasePolicy()
