"""A reversed or voided attempt no longer counts as a swipe or a charge;
wrong PINs and probing runs stay evidence."""

from __future__ import annotations

from posgw.gateway.risk import Action, RiskEngine, parse_risk_settings
from posgw.protocols.normalize import ResponseCategory
from tests.risk.test_rules import MINUTE, NSF, WRONG_PIN, attempt, run


def test_repeat_of_a_reversed_sale_is_not_a_duplicate_charge() -> None:
    engine = RiskEngine()
    lost = attempt(0, 60_00)  # approved, but the terminal never heard it: reversed
    run(engine, [lost])
    assert engine.undo(lost.tx_id, card=lost.card, terminal=lost.terminal)
    assert run(engine, [attempt(5.0, 60_00)]) == [Action.ALLOW]


def test_repeat_of_a_sale_not_undone_is_still_a_duplicate_charge() -> None:
    engine = RiskEngine()
    run(engine, [attempt(0, 60_00)])
    assert run(engine, [attempt(5.0, 60_00)]) == [Action.FREEZE]


def test_a_reversed_swipe_does_not_count_towards_rapid_repeat() -> None:
    engine = RiskEngine()
    first, second = attempt(0, 10_00), attempt(30.0, 11_00)
    run(engine, [first, second])
    engine.undo(first.tx_id, card=first.card, terminal=first.terminal)
    assert run(engine, [attempt(60.0, 12_00)]) == [Action.ALLOW]  # two swipes left, not three


def test_undo_leaves_the_other_attempts_of_the_card_on_the_terminal() -> None:
    engine = RiskEngine()
    first, second, third = attempt(0, 10_00), attempt(30.0, 11_00), attempt(40.0, 12_00)
    run(engine, [first, second, third])
    engine.undo(third.tx_id, card=third.card, terminal=third.terminal)
    assert run(engine, [attempt(60.0, 11_00)]) == [Action.FREEZE]  # 3 swipes, 11.00 twice


def test_a_reversed_sale_no_longer_counts_towards_the_terminal_amount() -> None:
    engine = RiskEngine(parse_risk_settings(
        {"rules": {"terminal_velocity": {"amount_limit": 25_000}}}))
    big = attempt(0, 20_000, card="tok0")
    run(engine, [big])
    engine.undo(big.tx_id, card=big.card, terminal=big.terminal)
    assert run(engine, [attempt(MINUTE, 10_000, card="tok1")]) == [Action.ALLOW]


def test_undo_keeps_wrong_pins_and_the_lockout() -> None:
    engine = RiskEngine()
    wrongs = [attempt(i * MINUTE, outcome=WRONG_PIN) for i in range(3)]
    run(engine, wrongs)
    for wrong in wrongs:
        engine.undo(wrong.tx_id, card=wrong.card, terminal=wrong.terminal)
    decision = engine.before(attempt(4 * MINUTE))
    assert decision.decline_with is ResponseCategory.PIN_TRIES_EXCEEDED


def test_undo_keeps_a_probing_run_as_evidence() -> None:
    engine = RiskEngine(parse_risk_settings({"rules": {"rapid_repeat": {"enabled": False}}}))
    trials = [attempt(0, 500_000, outcome=NSF), attempt(MINUTE, 490_000, outcome=NSF)]
    run(engine, trials)
    engine.undo(trials[1].tx_id, card=trials[1].card, terminal=trials[1].terminal)
    assert run(engine, [attempt(2 * MINUTE, 480_000)]) == [Action.FREEZE]


def test_undo_of_an_unknown_or_already_undone_attempt_changes_nothing() -> None:
    engine = RiskEngine()
    sale = attempt(0, 60_00)
    run(engine, [sale])
    assert not engine.undo("never-seen", card=sale.card, terminal=sale.terminal)
    assert not engine.undo(sale.tx_id, card=sale.card, terminal="elsewhere")
    assert engine.undo(sale.tx_id, card=sale.card, terminal=sale.terminal)
    assert not engine.undo(sale.tx_id, card=sale.card, terminal=sale.terminal)
