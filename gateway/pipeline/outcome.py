"""What a decided request becomes: its ledger status and its RRN.

Only money movements are final transactions (ledger row + center event);
sign-on, echo, balance inquiries and settlement requests are answered but
not recorded as transactions.
"""

from __future__ import annotations

import itertools
from datetime import datetime

from posgw.protocols.contract import DECLINED, FROZEN, REFUND, REVERSED, SETTLED, VOIDED
from posgw.protocols.normalize import TxKind

#: Kinds that move money: each one is a ledger row and a `tx` event.
MONEY_KINDS = frozenset({TxKind.PURCHASE, TxKind.PREAUTH, TxKind.COMPLETION, TxKind.REFUND,
                         TxKind.VOID, TxKind.REVERSAL})
#: Kinds that undo an earlier transaction of the same terminal.
UNDOING_KINDS = frozenset({TxKind.VOID, TxKind.REVERSAL})
_STATUS_OF_APPROVED = {TxKind.REFUND: REFUND, TxKind.VOID: VOIDED,
                       TxKind.REVERSAL: REVERSED}
_RRN_SERIAL_DIGITS = 8
#: Field 37 is an12: YDDD and the serial.
RRN_LENGTH = 4 + _RRN_SERIAL_DIGITS


def final_status(kind: TxKind, *, approved: bool, frozen: bool) -> str | None:
    """The `status` of the ledger row and event; None when nothing is recorded."""
    if kind not in MONEY_KINDS:
        return None
    if not approved:
        return DECLINED
    if kind in _STATUS_OF_APPROVED:
        return _STATUS_OF_APPROVED[kind]
    return FROZEN if frozen else SETTLED


class RrnSource:
    """Retrieval reference numbers for locally decided requests (field 37, an12).

    YDDD (last digit of the year, day of the year) and an 8-digit serial
    that starts at the process start's millisecond of the day, or past the
    highest RRN of that day the ledger already holds (`issued_today`): a
    restart the same day does not hand out its own numbers again, however
    fast the gateway ran before it. The ledger also holds acquirers' RRNs,
    which may share the day's prefix and push the serial up; past 10^8 it
    wraps, which would take 100 million numbers a day from both together.
    """

    def __init__(self, started: datetime, issued_today: str | None = None) -> None:
        midnight = started.replace(hour=0, minute=0, second=0, microsecond=0)
        first = int((started - midnight).total_seconds() * 1000)
        day = rrn_day_prefix(started)
        serial = (issued_today or "")[len(day):]
        if issued_today and issued_today.startswith(day) and serial.isascii() and serial.isdigit():
            first = max(first, int(serial) + 1)
        self._serials = itertools.count(first)

    def next(self, now: datetime) -> str:
        serial = next(self._serials) % 10**_RRN_SERIAL_DIGITS
        return f"{rrn_day_prefix(now)}{serial:0{_RRN_SERIAL_DIGITS}d}"


def rrn_day_prefix(day: datetime) -> str:
    """YDDD: the part of an RRN that names its day."""
    return f"{day.year % 10}{day.timetuple().tm_yday:03d}"
