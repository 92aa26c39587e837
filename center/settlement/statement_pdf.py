"""The merchant's monthly statement as a PDF, rendered from a `MonthlyStatement`.

One A4 document: the merchant and its (masked) account, the plan in words,
the month's totals (gross, returns, fees at the plan's rate, net owed,
credits received and what is still to arrive), the days, the credits with
their dates, and the findings still open. The numbers are the statement's,
formatted as the console formats money; the JSON report of the same merchant
and month carries the same ones.

fpdf2 draws it. Names are Vietnamese as often as not, which the PDF core
fonts (Latin-1) cannot show: the text is set in a Unicode TrueType font
found on the machine at run time (Debian's fonts-dejavu-core, or Noto or
Liberation), never one shipped in this repository.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from fpdf import FPDF
from fpdf.enums import Align, XPos, YPos

from posgw.center.settlement.records import MonthlyStatement, StatementFinding
from posgw.protocols.currency import format_amount

#: Unicode fonts with Vietnamese, by Debian package; the first found is used.
FONT_CANDIDATES: tuple[tuple[str, str], ...] = (
    ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",  # fonts-dejavu-core
     "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"),
    ("/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf",  # fonts-noto-core
     "/usr/share/fonts/truetype/noto/NotoSans-Bold.ttf"),
    ("/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",  # fonts-liberation
     "/usr/share/fonts/truetype/liberation/LiberationSans-Bold.ttf"),
)

FINDING_LABELS = {
    "fee_above_plan": "Fee above the plan",
    "charged_twice": "Charged twice",
    "failed_but_charged": "Failed but charged",
    "missing_from_settlement": "Missing from settlement",
    "credit_missing": "Credit missing",
    "credit_short": "Credit short",
    "unknown": "Unknown to us",
}
_FONT = "StatementSans"


class StatementFontMissing(RuntimeError):
    """No Unicode font on the machine to set the statement in."""


def find_statement_font() -> tuple[Path, Path]:
    """The (regular, bold) font files the statement is set in."""
    for regular, bold in FONT_CANDIDATES:
        if Path(regular).is_file() and Path(bold).is_file():
            return Path(regular), Path(bold)
    raise StatementFontMissing(
        "no Unicode font for the statement PDF: install fonts-dejavu-core "
        f"(looked for {', '.join(regular for regular, _ in FONT_CANDIDATES)})")


def render_statement(statement: MonthlyStatement, *,
                     generated_at: datetime | None = None) -> bytes:
    """The statement as PDF bytes. `generated_at` (default: now) is printed
    and stamped as the document's creation date."""
    generated_at = generated_at or datetime.now(UTC)
    pdf = _new_document(statement, generated_at)
    _heading(pdf, statement, generated_at)
    _totals(pdf, statement)
    _days(pdf, statement)
    _credits(pdf, statement)
    _findings(pdf, statement)
    return bytes(pdf.output())


def _new_document(statement: MonthlyStatement, generated_at: datetime) -> FPDF:
    regular, bold = find_statement_font()
    pdf = FPDF(format="A4")
    pdf.add_font(_FONT, "", str(regular))
    pdf.add_font(_FONT, "B", str(bold))
    pdf.set_title(f"Statement {statement.month} {statement.merchant_id}")
    pdf.set_creation_date(generated_at)
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    return pdf


def _heading(pdf: FPDF, statement: MonthlyStatement, generated_at: datetime) -> None:
    pdf.set_font(_FONT, "B", 16)
    _line(pdf, f"Merchant statement {statement.month}")
    pdf.set_font(_FONT, "", 10)
    _line(pdf, f"{statement.merchant_name} ({statement.merchant_id})")
    _line(pdf, f"Settlement account {statement.account_masked}, {statement.currency}")
    _line(pdf, f"Fee plan: {statement.plan}")
    _line(pdf, f"Generated {generated_at:%Y-%m-%d %H:%M} UTC")
    pdf.ln(4)


def _totals(pdf: FPDF, statement: MonthlyStatement) -> None:
    money = _money(statement)
    rows = [
        ("Gross sales", money(statement.gross_minor)),
        ("Returns (refunds, voids, reversals)", money(statement.returns_minor)),
        (f"Fees ({statement.plan})", money(statement.fee_minor)),
        ("Net owed", money(statement.net_minor)),
        ("Credits received", money(statement.credited_minor)),
        ("Net owed less credits received", money(statement.net_minor
                                                 - statement.credited_minor)),
    ]
    _section(pdf, "Totals")
    _table(pdf, ("", statement.currency), rows, widths=(130, 60), aligns="LR")


def _days(pdf: FPDF, statement: MonthlyStatement) -> None:
    money = _money(statement)
    rows = [(day.business_date.isoformat(), money(day.gross_minor), money(day.returns_minor),
             money(day.held_minor), money(day.fee_minor), money(day.net_minor),
             day.value_date.isoformat()) for day in statement.days]
    _section(pdf, "Days")
    _table(pdf, ("Day", "Gross", "Returns", "Held", "Fee", "Net", "Due on"), rows,
           widths=(24, 30, 28, 26, 26, 30, 26), aligns="LRRRRRL")


def _credits(pdf: FPDF, statement: MonthlyStatement) -> None:
    money = _money(statement)
    rows = [(credit.value_date.isoformat(), money(credit.amount_minor), credit.reference)
            for credit in statement.credits]
    _section(pdf, "Credits received")
    _table(pdf, ("Value date", "Amount", "Reference"), rows, widths=(30, 40, 120),
           aligns="LRL")


def _findings(pdf: FPDF, statement: MonthlyStatement) -> None:
    money = _money(statement)
    still_open = [f for f in statement.findings if f.status == "open"]
    _section(pdf, "Open findings")
    _table(pdf, ("Case", "Finding", "Day", "Amount"),
           [_finding_row(finding, money(finding.amount_minor)) for finding in still_open],
           widths=(50, 70, 30, 40), aligns="LLLR")
    resolved = len(statement.findings) - len(still_open)
    if resolved:
        _line(pdf, f"Findings of the month resolved or closed: {resolved}.")


def _finding_row(finding: StatementFinding, amount: str) -> tuple[str, ...]:
    label = FINDING_LABELS.get(finding.kind, finding.kind)
    return (finding.case_id, label, finding.business_date.isoformat(), amount)


def _money(statement: MonthlyStatement) -> Callable[[int], str]:
    """Amounts in minor units shown as the console shows them (12,500.00)."""
    return partial(format_amount, currency=statement.currency)


def _section(pdf: FPDF, title: str) -> None:
    pdf.ln(2)
    pdf.set_font(_FONT, "B", 12)
    _line(pdf, title)
    pdf.set_font(_FONT, "", 9)


def _line(pdf: FPDF, text: str) -> None:
    pdf.cell(text=text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _table(pdf: FPDF, headings: Sequence[str], rows: Sequence[Sequence[str]],
           widths: Sequence[int], aligns: str) -> None:
    """A table with one heading row; `aligns` has a letter per column, L or R
    (amounts right, so their digits line up)."""
    if not rows:
        _line(pdf, "None.")
        return
    with pdf.table(col_widths=tuple(widths), text_align=tuple(Align.coerce(a) for a in aligns),
                   line_height=5,
                   width=sum(widths), align=Align.L) as table:
        table.row(list(headings))
        for values in rows:
            table.row(list(values))
    pdf.ln(2)
