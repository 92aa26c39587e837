"""Freeze-risk rules: each pattern fires, and the honest look-alikes do not."""

from __future__ import annotations

import itertools

import pytest

from posgw.gateway.risk import Action, Attempt, RiskEngine, RiskSettings, parse_risk_settings
from posgw.protocols.config_error import ConfigError
from posgw.protocols.normalize import ResponseCategory, TxKind

APPROVED = ResponseCategory.APPROVED
WRONG_PIN = ResponseCategory.INCORRECT_PIN
NSF = ResponseCategory.INSUFFICIENT_FUNDS
MINUTE = 60.0
_ids = itertools.count(1)


def attempt(at: float, amount: int = 10_000, card: str = "tokA", terminal: str = "T1",
            outcome: ResponseCategory | None = APPROVED,
            kind: TxKind = TxKind.PURCHASE) -> Attempt:
    return Attempt(f"tx{next(_ids)}", card, terminal, amount, at, kind, outcome)


def run(engine: RiskEngine, attempts: list[Attempt]) -> list[Action]:
    """Each attempt through before() and, unless declined there, after()."""
    actions = []
    for a in attempts:
        first = engine.before(a)
        actions.append(first.action if first.action is Action.DECLINE else engine.after(a).action)
    return actions


def test_third_wrong_pin_locks_the_card_and_the_right_pin_is_declined_75() -> None:
    engine = RiskEngine()
    wrongs = [attempt(i * MINUTE, outcome=WRONG_PIN) for i in range(3)]
    assert run(engine, wrongs) == [Action.ALLOW] * 3
    right = attempt(4 * MINUTE)
    decision = engine.before(right)
    assert decision.action is Action.DECLINE
    assert decision.decline_with is ResponseCategory.PIN_TRIES_EXCEEDED


def test_wrong_pin_lockout_ends_after_its_period() -> None:
    engine = RiskEngine()
    run(engine, [attempt(i, outcome=WRONG_PIN) for i in range(3)])
    assert engine.before(attempt(25 * 3600.0)).action is Action.ALLOW


def test_without_lockout_an_approval_after_three_wrong_pins_is_frozen() -> None:
    settings = parse_risk_settings({"rules": {"wrong_pin": {"lockout_s": 0}}})
    engine = RiskEngine(settings)
    actions = run(engine, [*(attempt(i, outcome=WRONG_PIN) for i in range(3)), attempt(10)])
    assert actions == [Action.ALLOW] * 3 + [Action.FREEZE]


def test_two_wrong_pins_then_right_is_not_frozen() -> None:
    engine = RiskEngine()
    spaced = [attempt(0, outcome=WRONG_PIN), attempt(6 * MINUTE, outcome=WRONG_PIN),
              attempt(12 * MINUTE)]  # 6 minutes apart: no rapid_repeat either
    assert run(engine, spaced) == [Action.ALLOW] * 3


def test_four_swipes_in_two_minutes_freeze_the_approvals_after_the_second() -> None:
    engine = RiskEngine()
    swipes = [attempt(i * 30.0, amount=1000 + i) for i in range(4)]
    assert run(engine, swipes) == [Action.ALLOW, Action.ALLOW, Action.FREEZE, Action.FREEZE]


def test_honest_cashier_retrying_after_six_minutes_is_not_frozen() -> None:
    engine = RiskEngine()
    first = attempt(0, outcome=ResponseCategory.ISSUER_UNAVAILABLE)
    retry = attempt(6 * MINUTE)
    assert run(engine, [first, retry]) == [Action.ALLOW, Action.ALLOW]


def test_same_card_on_two_terminals_is_not_a_rapid_repeat() -> None:
    engine = RiskEngine()
    swipes = [attempt(i * 10.0, amount=1000 + i, terminal=f"T{i % 2}") for i in range(4)]
    assert Action.FREEZE not in run(engine, swipes)


def test_descending_trials_after_insufficient_funds_freeze_the_approval() -> None:
    engine = RiskEngine(parse_risk_settings({"rules": {"rapid_repeat": {"enabled": False}}}))
    trials = [attempt(0, 500_000, outcome=NSF), attempt(MINUTE, 490_000, outcome=NSF),
              attempt(2 * MINUTE, 480_000)]
    assert run(engine, trials) == [Action.ALLOW, Action.ALLOW, Action.FREEZE]


def test_descending_probe_evidence_names_the_whole_run() -> None:
    engine = RiskEngine(parse_risk_settings({"rules": {"rapid_repeat": {"enabled": False}}}))
    trials = [attempt(0, 500_000, outcome=NSF), attempt(MINUTE, 490_000, outcome=NSF)]
    run(engine, trials)
    last = attempt(2 * MINUTE, 480_000)
    engine.before(last)
    decision = engine.after(last)
    assert decision.rules == ("descending_probe",)
    assert decision.hits[0].evidence == (trials[0].tx_id, trials[1].tx_id, last.tx_id)


def test_descending_amounts_without_a_decline_are_not_a_probe() -> None:
    engine = RiskEngine(parse_risk_settings({"rules": {"rapid_repeat": {"enabled": False}}}))
    buys = [attempt(i * MINUTE, 5000 - i * 100) for i in range(3)]
    assert run(engine, buys) == [Action.ALLOW] * 3


def test_same_charge_approved_twice_within_two_minutes_is_a_duplicate() -> None:
    engine = RiskEngine()
    actions = run(engine, [attempt(0, 2500), attempt(90.0, 2500)])
    assert actions == [Action.ALLOW, Action.FREEZE]


def test_two_different_cards_of_the_same_amount_are_not_duplicates() -> None:
    engine = RiskEngine()
    assert run(engine, [attempt(0, 2500, card="tokA"),
                        attempt(30.0, 2500, card="tokB")]) == [Action.ALLOW, Action.ALLOW]


def test_refunds_are_never_judged() -> None:
    engine = RiskEngine()
    refunds = [attempt(i, 2500, kind=TxKind.REFUND) for i in range(5)]
    assert run(engine, refunds) == [Action.ALLOW] * 5


def test_many_distinct_cards_on_one_terminal_raise_an_alert() -> None:
    engine = RiskEngine(parse_risk_settings({"rules": {"many_cards": {"threshold": 3}}}))
    cards = [attempt(i * MINUTE, card=f"tok{i}") for i in range(4)]
    assert run(engine, cards)[-1] is Action.ALERT


def test_terminal_velocity_over_the_amount_limit_freezes() -> None:
    engine = RiskEngine(parse_risk_settings(
        {"rules": {"terminal_velocity": {"amount_limit": 25_000}}}))
    actions = run(engine, [attempt(i * MINUTE, 10_000, card=f"tok{i}") for i in range(3)])
    assert actions == [Action.ALLOW, Action.ALLOW, Action.FREEZE]


def test_rapid_repeat_configured_to_decline_answers_65_before_authorization() -> None:
    engine = RiskEngine(parse_risk_settings({"rules": {"rapid_repeat": {"action": "decline"}}}))
    run(engine, [attempt(0, 1000), attempt(10.0, 1001)])
    decision = engine.before(attempt(20.0, 1002))
    assert decision.decline_with is ResponseCategory.EXCEEDS_FREQUENCY_LIMIT


def test_rebuild_from_the_ledger_restores_window_state() -> None:
    history = [attempt(i * 30.0, 1000 + i) for i in range(2)]
    engine = RiskEngine()
    engine.rebuild(history)
    assert run(engine, [attempt(70.0, 1003)]) == [Action.FREEZE]


def test_reconfigure_keeps_windows_and_applies_new_thresholds() -> None:
    engine = RiskEngine()
    run(engine, [attempt(0, 1000), attempt(10.0, 1001)])
    engine.reconfigure(parse_risk_settings({"rules": {"rapid_repeat": {"threshold": 5}}}))
    assert run(engine, [attempt(20.0, 1002)]) == [Action.ALLOW]


@pytest.mark.parametrize(("table", "key"), [
    ({"rules": {"nope": {}}}, "risk.rules.nope"),
    ({"rules": {"wrong_pin": {"threshold": 0}}}, "risk.rules.wrong_pin.threshold"),
    ({"rules": {"wrong_pin": {"action": "shout"}}}, "risk.rules.wrong_pin.action"),
    ({"rules": {"duplicate_charge": {"windows": 3}}}, "risk.rules.duplicate_charge.windows"),
])
def test_bad_rule_settings_name_their_key(table: dict, key: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_risk_settings(table)
    assert err.value.key == key


def test_defaults_match_acquirer_practice() -> None:
    rules = RiskSettings().rules
    assert (rules["wrong_pin"].threshold, rules["wrong_pin"].lockout_s) == (3, 86400.0)
    assert (rules["rapid_repeat"].threshold, rules["rapid_repeat"].window_s) == (3, 300.0)
    assert rules["duplicate_charge"].window_s == 120.0
