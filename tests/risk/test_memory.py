"""The engine's state is bounded by its windows, not by its history."""

from __future__ import annotations

from posgw.gateway.risk import Action, RiskEngine, parse_risk_settings
from tests.risk.test_rules import MINUTE, WRONG_PIN, attempt, run

HOUR = 60 * MINUTE


def test_cards_never_seen_again_are_forgotten_after_their_window() -> None:
    engine = RiskEngine()
    run(engine, [attempt(i * 0.01, card=f"tok{i}", terminal=f"T{i % 7}") for i in range(500)])
    assert engine.keys_in_memory == 500 + 7
    run(engine, [attempt(2 * HOUR, card="late", terminal="T1")])
    assert engine.keys_in_memory == 2  # only the late card and T1


def test_no_terminal_window_is_kept_when_both_terminal_rules_are_off() -> None:
    engine = RiskEngine(parse_risk_settings({"rules": {
        "terminal_velocity": {"enabled": False}, "many_cards": {"enabled": False}}}))
    run(engine, [attempt(i * 0.01, card=f"tok{i}") for i in range(100)])
    assert engine.keys_in_memory == 100  # card windows only


def test_a_busy_day_keeps_the_last_half_hour_not_the_whole_day() -> None:
    engine = RiskEngine()
    # Ten hours at one sale every 3 s, over 1,000 cards: 12,000 attempts.
    run(engine, [attempt(i * 3.0, card=f"tok{i % 1000}", terminal=f"T{i % 7}")
                 for i in range(12_000)])
    # The card windows look back 30 minutes (descending_probe), 600 sales;
    # a sweep every 30 minutes forgets the rest, so at most twice that stays.
    assert 600 <= engine.attempts_in_memory <= 1_200


def test_wrong_pins_still_count_hours_later_among_thousands_of_sales() -> None:
    engine = RiskEngine(parse_risk_settings({"rules": {"wrong_pin": {"lockout_s": 0}}}))
    run(engine, [attempt(0, outcome=WRONG_PIN), attempt(MINUTE, outcome=WRONG_PIN)])
    run(engine, [attempt(MINUTE + i * 3.0, card=f"tok{i % 1000}") for i in range(10_000)])
    actions = run(engine, [attempt(20 * HOUR, outcome=WRONG_PIN), attempt(20 * HOUR + 5)])
    assert actions == [Action.ALLOW, Action.FREEZE]  # the third wrong PIN in 24 h
    assert engine.attempts_in_memory < 1_500
