"""The settlement step's verdict: was every injected fault found exactly
once, with its amount, and nothing else? Its JSON (the demo's
`--summary-json` key `settlement`) and its tables."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from rich.table import Table

from posgw.center.settlement.cases import case_id
from posgw.center.settlement.tables import SettlementCase
from posgw.protocols.currency import format_amount
from posgw.sandbox.demo.settlement_faults import FAULT_WORDS, ExpectedFinding


@dataclass(frozen=True, slots=True)
class FoundCase:
    """A case matching opened, and the injected fault it answers (None: unexpected)."""

    case_id: str
    kind: str
    merchant_id: str
    amount_minor: int
    currency: str
    fault: str | None


@dataclass(frozen=True, slots=True)
class FaultCheck:
    """An injected fault and the cases of its kind and merchant."""

    fault: str
    merchant_id: str
    kind: str
    expected_minor: int
    case_ids: list[str]
    found_minor: list[int]

    @property
    def found(self) -> bool:
        """Exactly one case, with the right amount."""
        return len(self.case_ids) == 1 and self.found_minor == [self.expected_minor]


@dataclass(slots=True)
class SettlementOutcome:
    business_date: str | None = None
    as_of: str | None = None  # matching judged the credits as of this day
    currency: str | None = None
    merchants: int = 0  # with an event that day
    merchants_registered: int = 0  # of those, added to the register now (standard plan)
    acquirer_lines: int = 0
    bank_credits: int = 0
    checks: list[FaultCheck] = field(default_factory=list)
    findings: list[FoundCase] = field(default_factory=list)
    skipped: str | None = None  # why the step did not run (not a failure)
    refused: str | None = None  # an import refused its file (a failure)

    @property
    def injected(self) -> int:
        return len(self.checks)

    @property
    def found(self) -> int:
        return sum(check.found for check in self.checks)

    @property
    def unexpected(self) -> int:
        return sum(finding.fault is None for finding in self.findings)

    @property
    def ok(self) -> bool:
        return self.refused is None and self.found == self.injected and self.unexpected == 0

    def as_json(self) -> dict[str, Any]:
        checks = [{**asdict(check), "found": check.found} for check in self.checks]
        return {**asdict(self), "checks": checks, "faults_injected": self.injected,
                "faults_found": self.found, "unexpected": self.unexpected, "ok": self.ok}


def judge(expected: Sequence[ExpectedFinding],
          cases: Sequence[SettlementCase]) -> tuple[list[FaultCheck], list[FoundCase]]:
    """Pair each case with the fault of its kind and merchant (faults never
    share both: settlement_faults.py)."""
    fault_of = {(want.kind, want.merchant_id): want.fault for want in expected}
    found = [FoundCase(case_id(row.id or 0), row.kind, row.merchant_id, row.amount_minor,
                       row.currency, fault_of.get((row.kind, row.merchant_id)))
             for row in cases]
    checks = []
    for want in expected:
        own = [case for case in found if case.fault == want.fault]
        checks.append(FaultCheck(want.fault, want.merchant_id, want.kind, want.amount_minor,
                                 [case.case_id for case in own],
                                 [case.amount_minor for case in own]))
    return checks, found


def settlement_tables(outcome: SettlementOutcome) -> list[Table | str]:
    """The findings table and the verdict line (or why the step was skipped)."""
    if outcome.skipped is not None:
        return [f"settlement: skipped: {outcome.skipped}"]
    lines: list[Table | str] = [
        f"settlement of {outcome.business_date}: {outcome.merchants} merchants, "
        f"{outcome.merchants_registered} registered now on the standard plan (0.6 %, no fixed "
        f"fee); acquirer CSV {_count(outcome.acquirer_lines, 'line')}, "
        f"camt.053 {_count(outcome.bank_credits, 'credit')}; credits judged as of "
        f"{outcome.as_of}"]
    if outcome.refused is not None:
        lines.append(f"[red]settlement: import refused: {outcome.refused}[/]")
    lines.append(_findings_table(outcome))
    colour = "green" if outcome.ok else "red"
    lines.append(f"[{colour}]settlement: {outcome.injected} faults injected, {outcome.found} "
                 f"found, {outcome.unexpected} unexpected[/]")
    return lines


def _findings_table(outcome: SettlementOutcome) -> Table:
    currency = outcome.currency or "EUR"
    table = Table("case", "finding", "merchant", f"amount {currency}", "fault injected",
                  title="Settlement findings")
    checks = {check.fault: check for check in outcome.checks}
    for case in outcome.findings:
        check = checks.get(case.fault or "")
        if check is None:
            verdict = "[red]none: UNEXPECTED[/]"
        elif check.found:
            verdict = FAULT_WORDS[check.fault]
        else:
            verdict = (f"[red]{FAULT_WORDS[check.fault]}: expected "
                       f"{format_amount(check.expected_minor, currency)}[/]")
        table.add_row(case.case_id, case.kind, case.merchant_id,
                      format_amount(case.amount_minor, case.currency), verdict)
    for check in outcome.checks:
        if not check.case_ids:
            table.add_row("-", check.kind, check.merchant_id,
                          format_amount(check.expected_minor, currency),
                          f"[red]{FAULT_WORDS[check.fault]}: NOT FOUND[/]")
    return table


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
