"""The words and pictures of the operations pages, as units: a batch's
differences in sentences, the charts' geometry."""

from __future__ import annotations

from posgw.center.web.charts import BOTTOM, HEIGHT, TOP, freeze_lines, hourly_bars, nice_ceiling
from posgw.center.web.i18n import language
from posgw.center.web.reconciliation import differences_in_words

EN, VI = language("en"), language("vi")


def test_two_sales_missing_at_the_center_are_said_with_their_amount_in_vnd() -> None:
    report = {"missing_at_gateway": {"debits": 2}, "amount_differences": {"debits": 250_000}}
    assert differences_in_words(report, "VND", EN.gettext, EN.money) == [
        "sales counted by the terminal but missing at the center: 2",
        "sales: the terminal's total exceeds the center's by ₫250,000"]


def test_each_kind_and_direction_has_its_sentence_in_the_reports_order() -> None:
    report = {"missing_at_terminal": {"credit_reversals": 1, "credits": 3},
              "amount_differences": {"credits": -1999}}
    assert differences_in_words(report, "EUR", EN.gettext, EN.money) == [
        "refunds at the center that the terminal did not count: 3",
        "refunds: the terminal's total falls short of the center's by €19.99",
        "refund reversals at the center that the terminal did not count: 1"]


def test_without_a_currency_the_amount_is_in_minor_units_and_junk_is_ignored() -> None:
    report = {"amount_differences": {"debits": 700, "nonsense": 5},
              "missing_at_gateway": "not a mapping"}
    assert differences_in_words(report, None, EN.gettext, EN.money) == [
        "sales: the terminal's total exceeds the center's by 700"]


def test_the_sentences_are_translated() -> None:
    [sentence] = differences_in_words({"missing_at_gateway": {"debits": 2}}, "VND",
                                      VI.gettext, VI.money)
    assert "2" in sentence and "sales" not in sentence


def test_the_axis_top_is_a_round_number_at_least_the_largest_value() -> None:
    assert [nice_ceiling(v) for v in (0, 1, 3, 7, 10, 11, 240, 0.04)] == [
        1, 1, 5, 10, 10, 20, 500, 0.05]


def test_hourly_bars_stack_by_status_and_fill_the_plot_at_the_top() -> None:
    chart = hourly_bars({(9, "settled"): 6, (9, "frozen"): 4, (14, "declined"): 1})
    settled, frozen, declined = chart.bars
    assert (settled.status, frozen.status, declined.status) == ("settled", "frozen", "declined")
    assert settled.hour == frozen.hour == 9 and settled.x == frozen.x
    assert frozen.y + frozen.height == settled.y  # stacked: frozen sits on settled
    assert frozen.y == TOP and settled.y + settled.height == HEIGHT - BOTTOM  # 10 of 10
    assert declined.height == round(settled.height / 6, 1)


def test_a_freeze_line_per_branch_with_a_dot_per_day() -> None:
    days = ["2026-12-01", "2026-12-02", "2026-12-03"]
    chart = freeze_lines({("2026-12-02", "B001"): 0.05, ("2026-12-03", "B002"): 0.1}, days,
                         ["B001", "B002"])
    b1, b2 = chart.lines
    assert (b1.css, b2.css) == ("series-0", "series-1")
    assert [dot.percent for dot in b1.dots] == ["0.0 %", "5.0 %", "0.0 %"]
    assert b2.dots[2].y == TOP  # 10 % is the axis top
    assert b1.points.count(",") == 3
    assert [tick.text for tick in chart.y_ticks] == ["0.0 %", "5.0 %", "10.0 %"]
