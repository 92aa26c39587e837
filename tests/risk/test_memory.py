"""The engine's state is bounded by its longest window, not by its history."""

from __future__ import annotations

from gateway.risk import RiskEngine, parse_risk_settings
from tests.risk.test_rules import attempt, run


def test_cards_never_seen_again_are_forgotten_after_the_longest_window() -> None:
    engine = RiskEngine()
    horizon = engine.settings.longest_window_s
    run(engine, [attempt(i * 0.01, card=f"tok{i}", terminal=f"T{i % 7}") for i in range(500)])
    assert engine.keys_in_memory == 500 + 500 + 7
    run(engine, [attempt(2 * horizon + 1, card="late", terminal="T1")])
    assert engine.keys_in_memory == 3  # only the late card, its pair and T1


def test_no_terminal_window_is_kept_when_both_terminal_rules_are_off() -> None:
    engine = RiskEngine(parse_risk_settings({"rules": {
        "terminal_velocity": {"enabled": False}, "many_cards": {"enabled": False}}}))
    run(engine, [attempt(i * 0.01, card=f"tok{i}") for i in range(100)])
    assert engine.keys_in_memory == 100 + 100  # cards and card+terminal pairs only
