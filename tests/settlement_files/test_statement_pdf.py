"""The monthly statement PDF: it renders to a page image, its text carries
the statement's numbers, and Vietnamese names are set in a font that has them."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from posgw.center.settlement import statement_pdf
from posgw.center.settlement.records import (
    MonthlyStatement,
    StatementCredit,
    StatementDay,
    StatementFinding,
)
from posgw.center.settlement.statement_pdf import (
    StatementFontMissing,
    find_statement_font,
    render_statement,
)
from posgw.protocols.currency import format_amount

pdfium = pytest.importorskip("pypdfium2", reason="pypdfium2 (the test extra) renders the PDF")

NAME = "Cửa hàng Phở Hà Nội – Chi nhánh Đống Đa"
GENERATED = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def statement_day(number: int, currency: str) -> StatementDay:
    """Day `number` of the month's sales: the gross moves a unit a day, so each
    day's figures are told apart in the text."""
    cents = 100 if currency == "USD" else 1  # 1,250,000 VND or 1,250,000.00 USD
    day = date(2026, 11, 2) + timedelta(days=number)
    gross, returns, fee = 1_250_000 * cents + number, 25_000 * cents, 7_350 * cents
    return StatementDay(day, gross, returns, 10_000 * cents if number == 1 else 0, fee,
                        gross - returns - fee, day + timedelta(days=1))


def statement(currency: str = "VND", days: int = 3) -> MonthlyStatement:
    day_rows = tuple(statement_day(number, currency) for number in range(days))
    return MonthlyStatement(
        merchant_id="M0001", merchant_name=NAME, account_masked="9704******2999",
        month="2026-11", currency=currency,
        plan="0.60 % of the amount, no fixed fee per transaction", days=day_rows,
        credits=tuple(StatementCredit(d.value_date, d.net_minor,
                                      f"POSGW-M0001-{d.business_date:%Y%m%d}")
                      for d in day_rows[:-1]),  # the last day's credit is missing
        findings=(
            StatementFinding("CASE-2026-000123", "fee_above_plan", date(2026, 11, 2), 2_500,
                             "open"),
            StatementFinding("CASE-2026-000124", "credit_missing", day_rows[-1].business_date,
                             day_rows[-1].net_minor, "open"),
            StatementFinding("CASE-2026-000100", "charged_twice", date(2026, 11, 3), 99_999,
                             "resolved"),
        ),
    )


def pdf_text(data: bytes) -> str:
    document = pdfium.PdfDocument(data)
    return "\n".join(document[i].get_textpage().get_text_range() for i in range(len(document)))


def test_statement_renders_to_a_page_image(tmp_path: Path) -> None:
    data = render_statement(statement(), generated_at=GENERATED)
    assert data.startswith(b"%PDF-")
    page = pdfium.PdfDocument(data)[0]
    image = page.render(scale=1).to_pil().convert("L")
    image.save(tmp_path / "statement.png")  # where a person would look
    assert abs(image.size[0] - 595) <= 1 and abs(image.size[1] - 842) <= 1  # A4, 72 dpi
    dark = sum(image.histogram()[:128])  # pixels darker than mid-grey
    assert dark > 5_000  # text and table rules, not a blank page


def test_text_carries_the_statements_totals_and_days() -> None:
    month = statement()
    text = pdf_text(render_statement(month, generated_at=GENERATED))
    for label, amount in [("Gross sales", month.gross_minor),
                          ("Returns (refunds, voids, reversals)", month.returns_minor),
                          (f"Fees ({month.plan})", month.fee_minor),
                          ("Net owed", month.net_minor),
                          ("Credits received", month.credited_minor),
                          ("Net owed less credits received",
                           month.net_minor - month.credited_minor)]:
        assert f"{label} {format_amount(amount, 'VND')}" in text
    for day in month.days:
        assert (f"{day.business_date} {format_amount(day.gross_minor, 'VND')} "
                f"{format_amount(day.returns_minor, 'VND')} {format_amount(day.held_minor, 'VND')} "
                f"{format_amount(day.fee_minor, 'VND')} {format_amount(day.net_minor, 'VND')} "
                f"{day.value_date}") in text


def test_text_lists_credits_with_dates_and_only_open_findings() -> None:
    month = statement()
    text = pdf_text(render_statement(month, generated_at=GENERATED))
    for credit in month.credits:
        assert f"{credit.value_date} {format_amount(credit.amount_minor, 'VND')} " \
               f"{credit.reference}" in text
    assert "CASE-2026-000123 Fee above the plan 2026-11-02 2,500" in text
    assert f"CASE-2026-000124 Credit missing 2026-11-04 " \
           f"{format_amount(month.days[-1].net_minor, 'VND')}" in text
    assert "CASE-2026-000100" not in text
    assert "resolved or closed: 1." in text


def test_minor_units_are_shown_in_the_currencys_decimals() -> None:
    month = statement("USD")
    text = pdf_text(render_statement(month, generated_at=GENERATED))
    assert f"Gross sales {format_amount(month.gross_minor, 'USD')}" in text
    assert format_amount(month.gross_minor, "USD").endswith(".03")  # 3 days, cents kept


def test_vietnamese_name_is_in_the_text_and_in_the_font() -> None:
    from fontTools.ttLib import TTFont  # fpdf2's own dependency

    text = pdf_text(render_statement(statement(), generated_at=GENERATED))
    assert f"{NAME} (M0001)" in text
    regular, _ = find_statement_font()
    covered = TTFont(str(regular)).getBestCmap()
    assert all(ord(char) in covered for char in NAME)  # drawn, not tofu boxes


def test_long_month_flows_onto_more_pages() -> None:
    data = render_statement(statement(days=29), generated_at=GENERATED)
    assert len(pdfium.PdfDocument(data)) >= 2
    assert "CASE-2026-000124" in pdf_text(data)


def test_no_unicode_font_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(statement_pdf, "FONT_CANDIDATES", (("/nonexistent.ttf", "/no-b.ttf"),))
    with pytest.raises(StatementFontMissing, match="install fonts-dejavu-core"):
        render_statement(statement(), generated_at=GENERATED)
