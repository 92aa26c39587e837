"""The built-in rules, each a pure function of one attempt and its history.

A rule sees the current attempt and the earlier attempts of the same key
still inside its window (oldest first), and returns a RuleHit with the
evidence (the transaction ids involved) or None. The engine decides when
each rule runs (before or after authorization) from its configured action.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

from posgw.protocols.normalize import ResponseCategory, TxKind

from .settings import RuleSettings

PROBE_DECLINES = frozenset({ResponseCategory.INSUFFICIENT_FUNDS,
                            ResponseCategory.EXCEEDS_AMOUNT_LIMIT})


class Action(IntEnum):
    """Ordered by severity: a decision takes its most severe hit."""

    ALLOW = 0
    ALERT = 1
    FREEZE = 2
    DECLINE = 3


@dataclass(frozen=True, slots=True)
class Attempt:
    """One card attempt as the rules see it: no PAN, only its keyed token."""

    tx_id: str
    card: str  # PAN token
    terminal: str
    amount: int  # minor units
    at: float  # seconds, from the caller's clock
    kind: TxKind = TxKind.PURCHASE
    outcome: ResponseCategory | None = None  # None until authorized
    undone: bool = False  # reversed or voided: no longer a swipe or a charge (engine.undo)

    @property
    def approved(self) -> bool:
        return self.outcome is not None and self.outcome.is_approval


@dataclass(frozen=True, slots=True)
class RuleHit:
    rule: str
    action: Action
    reason: str
    evidence: tuple[str, ...]  # tx ids, oldest first, the current one last
    decline_with: ResponseCategory | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action = Action.ALLOW
    hits: tuple[RuleHit, ...] = ()

    @classmethod
    def of(cls, hits: Sequence[RuleHit]) -> Decision:
        if not hits:  # nearly every request: no generator, no new object
            return ALLOWED
        return cls(max(hit.action for hit in hits), tuple(hits))

    @property
    def decline_with(self) -> ResponseCategory | None:
        for hit in self.hits:
            if hit.action is Action.DECLINE:
                return hit.decline_with or ResponseCategory.SUSPECTED_FRAUD
        return None

    @property
    def rules(self) -> tuple[str, ...]:
        return tuple(h.rule for h in self.hits)


#: The decision without hits (immutable, so one serves every request).
ALLOWED = Decision()


def wrong_pins(history: Sequence[Attempt], current: Attempt, rule: RuleSettings) -> RuleHit | None:
    """N incorrect-PIN outcomes for one card within the window."""
    wrong = [a for a in (*history, current) if a.outcome is ResponseCategory.INCORRECT_PIN]
    if len(wrong) < rule.threshold:
        return None
    return _hit("wrong_pin", rule, f"{len(wrong)} incorrect PINs within {rule.window_s:g} s",
                [*wrong, current], ResponseCategory.PIN_TRIES_EXCEEDED)


def rapid_repeat(history: Sequence[Attempt], current: Attempt,
                 rule: RuleSettings) -> RuleHit | None:
    """One card on one terminal, N attempts within the window."""
    if len(history) + 1 < rule.threshold:
        return None
    return _hit("rapid_repeat", rule,
                f"{len(history) + 1} attempts of one card on one terminal within "
                f"{rule.window_s:g} s", [*history, current],
                ResponseCategory.EXCEEDS_FREQUENCY_LIMIT)


def descending_probe(history: Sequence[Attempt], current: Attempt,
                     rule: RuleSettings) -> RuleHit | None:
    """Strictly descending amounts after a 51/61 decline: card testing for the limit."""
    run = [current]
    for attempt in reversed(history):
        if attempt.amount <= run[-1].amount:
            break
        run.append(attempt)
    run.reverse()
    starts_with_probe_decline = any(a.outcome in PROBE_DECLINES for a in run[:-1])
    if len(run) < rule.threshold or not starts_with_probe_decline:
        return None
    amounts = " > ".join(str(a.amount) for a in run)
    return _hit("descending_probe", rule, f"descending amounts after a decline: {amounts}", run,
                ResponseCategory.SUSPECTED_FRAUD)


def duplicate_charge(history: Sequence[Attempt], current: Attempt,
                     rule: RuleSettings) -> RuleHit | None:
    """The same card, terminal and amount approved again within the window."""
    same = [a for a in history if a.approved and a.amount == current.amount]
    if len(same) + 1 < rule.threshold:
        return None
    return _hit("duplicate_charge", rule,
                f"same amount approved {len(same) + 1} times within {rule.window_s:g} s",
                [*same, current], ResponseCategory.DUPLICATE_TRANSMISSION)


def terminal_velocity(count: int, amount: int, current: Attempt,
                      rule: RuleSettings) -> RuleHit | None:
    """A terminal's attempts (or amount) per window over its limit."""
    over_count = count + 1 > rule.threshold
    over_amount = rule.amount_limit > 0 and amount + current.amount > rule.amount_limit
    if not (over_count or over_amount):
        return None
    return _hit("terminal_velocity", rule,
                f"terminal at {count + 1} attempts, {amount + current.amount} minor units "
                f"within {rule.window_s:g} s", [current], ResponseCategory.EXCEEDS_FREQUENCY_LIMIT)


def many_cards(distinct_cards: int, current: Attempt, rule: RuleSettings) -> RuleHit | None:
    """More than N distinct cards on one terminal within the window."""
    if distinct_cards <= rule.threshold:
        return None
    return _hit("many_cards", rule,
                f"{distinct_cards} distinct cards on the terminal within {rule.window_s:g} s",
                [current], ResponseCategory.SUSPECTED_FRAUD)


def _hit(name: str, rule: RuleSettings, reason: str, attempts: Sequence[Attempt],
         decline_with: ResponseCategory) -> RuleHit:
    evidence = tuple(dict.fromkeys(a.tx_id for a in attempts))
    return RuleHit(name, Action[rule.action.upper()], reason, evidence, decline_with)
