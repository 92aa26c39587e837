"""What a merchant is owed per business day, summed by the database."""

from __future__ import annotations

from datetime import date

from sqlmodel import Session

from posgw.center.calendar import WorkingCalendar
from posgw.center.db import CenterStore
from posgw.center.settlement.fees import FeePlan
from posgw.center.settlement.merchants import add_merchant, set_plan
from posgw.center.settlement.owed import OwedDay, owed_days
from tests.settlement.ledger import Event, insert_events

FRIDAY, MONDAY, TUESDAY = date(2026, 12, 4), date(2026, 12, 7), date(2026, 12, 8)
WEEKENDS_ONLY = WorkingCalendar.of()


def owed(store: CenterStore, first: date, last: date,
         calendar: WorkingCalendar = WEEKENDS_ONLY, value_days: int = 1) -> list[OwedDay]:
    with store.engine.connect() as conn:
        return owed_days(conn, calendar, value_days, first, last)


def test_a_day_sums_gross_returns_held_and_the_plan_fee(store: CenterStore) -> None:
    insert_events(store.engine, [
        Event(1, FRIDAY, 1_000_000), Event(2, FRIDAY, 333_333),
        Event(3, FRIDAY, 200_000), Event(4, FRIDAY, 200_000, status="reversed", original=3),
        Event(5, FRIDAY, 50_000, status="refund"),
        Event(6, FRIDAY, 700_000, status="frozen"),
        Event(7, FRIDAY, 90_000, status="declined"),
        Event(8, FRIDAY, 10_000, merchant_id="M0002")])
    day, other = owed(store, FRIDAY, FRIDAY)
    assert (day.merchant_id, day.sales, day.gross_minor, day.returns_minor, day.held_minor) == (
        "M0001", 3, 1_533_333, 250_000, 700_000)
    # 6,000 + 2,000 (1,999.998 rounded half up); the reversed sale pays no fee
    assert day.fee_minor == 8_000
    assert day.net_minor == 1_533_333 - 250_000 - 8_000
    assert day.value_date == MONDAY  # T+1 working day over the weekend
    assert (other.merchant_id, other.gross_minor, other.fee_minor) == ("M0002", 10_000, 60)


def test_a_released_freeze_is_owed_on_its_release_day_and_a_returned_one_never(
        store: CenterStore) -> None:
    insert_events(store.engine, [
        Event(1, FRIDAY, 500_000, status="frozen"),
        Event(2, FRIDAY, 300_000, status="frozen"),
        Event(3, MONDAY, 500_000, status="settled", original=1),  # released: re-cleared
        Event(4, MONDAY, 300_000, status="refund", original=2)])  # returned to the card
    friday, monday = owed(store, FRIDAY, MONDAY)
    assert (friday.gross_minor, friday.held_minor, friday.net_minor) == (0, 800_000, 0)
    assert (monday.gross_minor, monday.returns_minor, monday.fee_minor) == (500_000, 0, 3_000)
    assert monday.value_date == TUESDAY


def test_the_plan_in_force_that_day_prices_it(store: CenterStore) -> None:
    with Session(store.engine) as session:
        add_merchant(session, "M0001", "Shop", "B001", "VN12ABCD0123456789", "VND",
                     FeePlan(date(2026, 1, 1), rate_ppm=6_000))
        set_plan(session, "M0001", FeePlan(MONDAY, rate_ppm=5_000, fixed_minor=100,
                                           cap_minor=4_000))
    insert_events(store.engine, [Event(1, FRIDAY, 1_000_000), Event(2, MONDAY, 1_000_000),
                                 Event(3, MONDAY, 100_000)])
    friday, monday = owed(store, FRIDAY, MONDAY)
    assert friday.fee_minor == 6_000
    assert monday.fee_minor == 4_000 + 600  # the cap, then 500 + 100


def test_value_days_count_working_days_past_holidays(store: CenterStore) -> None:
    insert_events(store.engine, [Event(1, FRIDAY, 1_000)])
    calendar = WorkingCalendar.of(holidays=[MONDAY])
    [day] = owed(store, FRIDAY, FRIDAY, calendar, value_days=2)
    assert day.value_date == date(2026, 12, 9)  # Tue is 1, Wed is 2


def test_vnd_fees_are_whole_dong(store: CenterStore) -> None:
    insert_events(store.engine, [Event(n, FRIDAY, 250) for n in range(1, 5)])
    [day] = owed(store, FRIDAY, FRIDAY)
    assert day.fee_minor == 4 * 2  # 1.5 dong each, half up: 2
