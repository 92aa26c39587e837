"""The demo's settlement faults: which merchant gets which, the acquirer's
lines and the bank's credits with them injected, and the finding each one
must raise (kind, merchant, amount).

Five faults, one of each the issue names: a rate of 0.62 % where the plan
says 0.6 %, a fixed 1.00 per sale, a sale settled twice, a credit that
never arrives, a credit that arrives after the grace period. They go round
the demo's merchants in that order, so with five merchants or more each
lands on its own merchant; with fewer, a merchant carries several, but
never two that raise the same kind of finding (the two fee faults, the two
credit faults), so each fault is still its own finding.

No I/O here: sales in, lines, credits and expectations out (h10's
simulator/settlement_files.py writes the files).
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from posgw.center.calendar import WorkingCalendar
from posgw.protocols.currency import minor_unit_digits
from posgw.protocols.settlement import plan_fee_minor
from posgw.simulator.settlement_files import (
    STANDARD_RATE,
    ApprovedSale,
    SettledLine,
    SettlementFaults,
    SimulatedCredit,
    bank_credits,
    settle,
)

FAULT_RATE = Decimal("0.0062")  # 0.62 % where the plan says 0.6 %
#: In injection order: the round over the merchants (module doc).
FAULTS = ("rate", "fixed_fee", "duplicate_line", "missing_credit", "late_credit")
FINDING_OF = {"rate": "fee_above_plan", "fixed_fee": "fee_above_plan",
              "duplicate_line": "charged_twice", "missing_credit": "credit_missing",
              "late_credit": "credit_missing"}
#: What each fault is, in the demo's findings table.
FAULT_WORDS = {"rate": "a rate of 0.62 %", "fixed_fee": "a fixed 1.00 per sale",
               "duplicate_line": "a sale settled twice", "missing_credit": "a credit never sent",
               "late_credit": "a credit sent late"}
#: The round above keeps same-kind faults apart from two merchants on.
MIN_MERCHANTS = 2


@dataclass(frozen=True, slots=True)
class Injection:
    """Who gets which fault."""

    merchant_of: dict[str, str]  # fault -> merchant
    duplicate_rrn: str
    late_days: int  # calendar days the late credit comes after its due date
    fixed_fee_minor: int  # 1.00 in the day's currency


@dataclass(frozen=True, slots=True)
class ExpectedFinding:
    fault: str
    merchant_id: str
    kind: str
    amount_minor: int


@dataclass(frozen=True, slots=True)
class CreditDates:
    """When a business day's net is due, when a missing credit becomes a
    finding, and when the late credit comes (after that)."""

    due: date
    deadline: date
    late: date

    @classmethod
    def of(cls, day: date, calendar: WorkingCalendar, value_days: int,
           grace_days: int) -> CreditDates:
        due = calendar.add_working_days(day, value_days)
        deadline = calendar.add_working_days(due, grace_days)
        return cls(due, deadline, calendar.add_working_days(deadline, 1))


def eligible_merchants(sales: Sequence[ApprovedSale]) -> list[str]:
    """Merchants every fault can land on: a sale the 0.62 % rate charges more
    than the plan does (not every small amount rounds differently), and a
    positive net by the plan (a credit is owed)."""
    by_merchant: dict[str, list[ApprovedSale]] = defaultdict(list)
    for sale in sales:
        by_merchant[sale.merchant_id].append(sale)
    return sorted(merchant for merchant, own in by_merchant.items()
                  if any(_fee(s, FAULT_RATE) > _fee(s, STANDARD_RATE) for s in own)
                  and sum(s.amount_minor - _fee(s, STANDARD_RATE) for s in own) > 0)


def choose(sales: Sequence[ApprovedSale], seed: int, dates: CreditDates) -> Injection | None:
    """The faults' merchants and the duplicated sale, drawn with `seed`;
    None when fewer than MIN_MERCHANTS merchants can take them."""
    merchants = eligible_merchants(sales)
    if len(merchants) < MIN_MERCHANTS:
        return None
    draw = random.Random(f"{seed}-settlement")
    draw.shuffle(merchants)
    merchant_of = {fault: merchants[index % len(merchants)]
                   for index, fault in enumerate(FAULTS)}
    candidates = sorted(sale.rrn for sale in sales
                        if sale.merchant_id == merchant_of["duplicate_line"]
                        and sale.amount_minor > 0)
    currency = sales[0].currency
    return Injection(merchant_of, draw.choice(candidates), (dates.late - dates.due).days,
                     10 ** minor_unit_digits(currency))


def faulty_lines(sales: Sequence[ApprovedSale], injection: Injection) -> list[SettledLine]:
    """The acquirer's lines: the standard plan, but for the fee faults'
    merchants, and the one sale settled twice."""
    lines: list[SettledLine] = []
    for sale in sales:
        lines.extend(settle([sale], faults=_line_faults(sale.merchant_id, injection)))
    return lines


def _line_faults(merchant: str, injection: Injection) -> SettlementFaults:
    faulty = injection.merchant_of
    return SettlementFaults(
        rate=FAULT_RATE if merchant == faulty["rate"] else None,
        fixed_fee_minor=injection.fixed_fee_minor if merchant == faulty["fixed_fee"] else 0,
        duplicate_line=injection.duplicate_rrn if merchant == faulty["duplicate_line"] else None)


def faulty_credits(lines: Sequence[SettledLine], injection: Injection,
                   value_date: Callable[[date], date]) -> list[SimulatedCredit]:
    """The bank's credits of the acquirer's nets: one never comes, one late."""
    faults = SettlementFaults(
        missing_credit=injection.merchant_of["missing_credit"],
        late_credit=(injection.merchant_of["late_credit"], injection.late_days))
    return bank_credits(lines, faults, value_date=value_date)


def expected_findings(lines: Sequence[SettledLine],
                      injection: Injection) -> list[ExpectedFinding]:
    """The finding each fault must raise, its amount worked out from the lines
    as written (so faults sharing a merchant add up as the matcher sees them)."""
    expected = []
    for fault in FAULTS:
        merchant = injection.merchant_of[fault]
        own = [line for line in lines if line.sale.merchant_id == merchant]
        if fault in ("rate", "fixed_fee"):
            amount = sum(max(0, line.fee_minor - _fee(line.sale, STANDARD_RATE))
                         for line in own if line.sale.amount_minor > 0)
        elif fault == "duplicate_line":
            amount = next(line.sale.amount_minor for line in own
                          if line.sale.rrn == injection.duplicate_rrn)
        else:  # a credit fault: what the acquirer settled for the day is expected
            amount = sum(line.net_minor for line in own)
        expected.append(ExpectedFinding(fault, merchant, FINDING_OF[fault], amount))
    return expected


def _fee(sale: ApprovedSale, rate: Decimal) -> int:
    return plan_fee_minor(sale.amount_minor, rate)
