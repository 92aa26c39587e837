"""The risk engine: sliding windows per card, card+terminal and terminal.

Cost per attempt is a few dict lookups and list operations on windows that
hold only attempts younger than the longest enabled rule window, so it does
not grow with the number of cards in state (bench/risk.py measures it).
Windows are pruned when their key is seen again, and all of them once per
longest window, so a card never seen again does not stay in memory.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TypeVar

from protocols.normalize import ResponseCategory, TxKind

from . import rules
from .rules import Action, Attempt, Decision, RuleHit
from .settings import RiskSettings

K = TypeVar("K", str, tuple[str, str])
# Which configured actions each phase evaluates: declines before
# authorization; freezes (approvals only) and alerts after it.
_DECLINING = frozenset({"decline"})
_FREEZING = frozenset({"freeze", "alert"})
_ALERTING = frozenset({"alert"})
#: Only money leaving the card is judged; refunds, voids and reversals pass.
JUDGED_KINDS = frozenset({TxKind.PURCHASE, TxKind.PREAUTH, TxKind.COMPLETION})


@dataclass(slots=True)
class _TerminalWindow:
    attempts: deque[Attempt] = field(default_factory=deque)
    amount: int = 0
    cards: Counter[str] = field(default_factory=Counter)

    def add(self, attempt: Attempt) -> None:
        self.attempts.append(attempt)
        self.amount += attempt.amount
        self.cards[attempt.card] += 1

    def prune(self, before: float) -> None:
        while self.attempts and self.attempts[0].at < before:
            old = self.attempts.popleft()
            self.amount -= old.amount
            self.cards[old.card] -= 1
            if not self.cards[old.card]:
                del self.cards[old.card]

    def discard(self, tx_id: str) -> None:
        """Take out an attempt that was undone (no-op when already pruned)."""
        attempt = _take(self.attempts, tx_id)
        if attempt is None:
            return
        self.amount -= attempt.amount
        self.cards[attempt.card] -= 1
        if not self.cards[attempt.card]:
            del self.cards[attempt.card]


class RiskEngine:
    def __init__(self, settings: RiskSettings | None = None) -> None:
        self.reconfigure(settings or RiskSettings())
        # Lists, not deques: a card's window mostly holds one or two attempts,
        # and a deque's first block alone is 64 slots (~600 bytes per key).
        self._by_card: dict[str, list[Attempt]] = {}
        self._by_card_terminal: dict[tuple[str, str], list[Attempt]] = {}
        self._by_terminal: dict[str, _TerminalWindow] = {}
        self._locked_until: dict[str, float] = {}
        self._next_sweep_at: float | None = None

    def reconfigure(self, settings: RiskSettings) -> None:
        """New thresholds take effect at once; window state is kept (SIGHUP reload)."""
        self.settings = settings
        # Derived once here, not per attempt: they are on the hot path.
        self._horizon_s = settings.longest_window_s
        # The terminal rules share one window; none is kept when both are off.
        self._terminal_span_s = max((rule.window_s for rule in (
            settings.rule("terminal_velocity"), settings.rule("many_cards")) if rule.enabled),
            default=0.0)

    def before(self, attempt: Attempt) -> Decision:
        """Before authorization: lockouts and rules configured to decline."""
        if attempt.kind not in JUDGED_KINDS:
            return Decision()
        hits: list[RuleHit] = []
        until = self._locked_until.get(attempt.card)
        if until is not None and attempt.at < until:
            hits.append(RuleHit("wrong_pin", Action.DECLINE, "card locked after wrong PINs",
                                (attempt.tx_id,), ResponseCategory.PIN_TRIES_EXCEEDED))
        hits += self._evaluate(attempt, _DECLINING)
        return Decision.of(hits)

    def after(self, attempt: Attempt) -> Decision:
        """After authorization (`attempt.outcome` set): record it; freeze or alert."""
        if attempt.kind not in JUDGED_KINDS:
            return Decision()
        hits = self._evaluate(attempt, _FREEZING if attempt.approved else _ALERTING)
        self.record(attempt)
        return Decision.of(hits)

    def record(self, attempt: Attempt) -> None:
        """Add a decided attempt to the windows (also used to rebuild from the ledger)."""
        if attempt.kind not in JUDGED_KINDS:
            return
        self._sweep(attempt.at)
        self._by_card.setdefault(attempt.card, []).append(attempt)
        key = (attempt.card, attempt.terminal)
        self._by_card_terminal.setdefault(key, []).append(attempt)
        if self._terminal_span_s:
            self._by_terminal.setdefault(attempt.terminal, _TerminalWindow()).add(attempt)
        if attempt.outcome is not ResponseCategory.INCORRECT_PIN:
            return
        wrong_pin = self.settings.rule("wrong_pin")
        if wrong_pin.enabled and wrong_pin.lockout_s and rules.wrong_pins(
                self._window(self._by_card, attempt.card, attempt.at, wrong_pin.window_s)[:-1],
                attempt, wrong_pin):
            self._locked_until[attempt.card] = attempt.at + wrong_pin.lockout_s

    def undo(self, tx_id: str, *, card: str, terminal: str) -> bool:
        """A reversal or void undid attempt `tx_id` of `card` on `terminal`.

        It no longer counts as a swipe or a charge of that card on that terminal
        (rapid_repeat, duplicate_charge) nor in the terminal's count and amount
        (terminal_velocity, many_cards): a terminal that reverses a sale whose
        answer it lost and repeats it is not swiping twice. The card's own window
        keeps it, and a lockout stays: a wrong PIN was still tried, a probing run
        was still made (wrong_pin, descending_probe). False when the attempt is
        not in the windows (pruned, or of a kind that is not judged).
        """
        key = (card, terminal)
        pair = self._by_card_terminal.get(key)
        if pair is None or _take(pair, tx_id) is None:
            return False
        if not pair:
            del self._by_card_terminal[key]
        window = self._by_terminal.get(terminal)
        if window is not None:
            window.discard(tx_id)
        return True

    @property
    def keys_in_memory(self) -> int:
        """Cards, card+terminal pairs and terminals that have windows now."""
        return len(self._by_card) + len(self._by_card_terminal) + len(self._by_terminal)

    def rebuild(self, attempts: Iterable[Attempt]) -> None:
        """Replay the ledger's recent attempts, oldest first, after a restart."""
        for attempt in attempts:
            self.record(attempt)

    def _evaluate(self, attempt: Attempt, actions: frozenset[str]) -> list[RuleHit]:
        """Hits of the enabled rules whose configured action is in `actions`."""
        settings, hits = self.settings, []
        card_rules = (("wrong_pin", rules.wrong_pins), ("descending_probe", rules.descending_probe))
        for name, check in card_rules:
            rule = settings.rule(name)
            if rule.enabled and rule.action in actions:
                history = self._window(self._by_card, attempt.card, attempt.at, rule.window_s)
                hits.append(check(history, attempt, rule))
        pair = (attempt.card, attempt.terminal)
        for name, check in (("rapid_repeat", rules.rapid_repeat),
                            ("duplicate_charge", rules.duplicate_charge)):
            rule = settings.rule(name)
            if rule.enabled and rule.action in actions:
                history = self._window(self._by_card_terminal, pair, attempt.at, rule.window_s)
                hits.append(check(history, attempt, rule))
        hits += self._terminal_hits(attempt, actions)
        return [hit for hit in hits if hit is not None]

    def _terminal_hits(self, attempt: Attempt, actions: frozenset[str]) -> list[RuleHit | None]:
        if not self._terminal_span_s:  # both terminal rules are off
            return []
        window = self._by_terminal.get(attempt.terminal)
        if window is None:
            window = self._by_terminal[attempt.terminal] = _TerminalWindow()
        velocity = self.settings.rule("terminal_velocity")
        spread = self.settings.rule("many_cards")
        # One window serves both terminal rules: the longer of their two windows.
        window.prune(attempt.at - self._terminal_span_s)
        hits: list[RuleHit | None] = []
        if velocity.enabled and velocity.action in actions:
            hits.append(rules.terminal_velocity(len(window.attempts), window.amount, attempt,
                                                velocity))
        if spread.enabled and spread.action in actions:
            distinct = len(window.cards) + (attempt.card not in window.cards)
            hits.append(rules.many_cards(distinct, attempt, spread))
        return hits

    def _window(self, windows: dict[K, list[Attempt]], key: K, now: float,
                window_s: float) -> list[Attempt]:
        """Attempts of `key` inside `window_s` before `now`; prunes past the longest window."""
        attempts = windows.get(key)
        if not attempts:
            return []
        _drop_before(attempts, now - self._horizon_s)
        if not attempts:
            del windows[key]
            return []
        start = now - window_s
        return [a for a in attempts if a.at >= start]

    def _sweep(self, now: float) -> None:
        """Once per longest window: forget every key with nothing left in it."""
        if self._next_sweep_at is not None and now < self._next_sweep_at:
            return
        self._next_sweep_at = now + self._horizon_s
        horizon = now - self._horizon_s
        for windows in (self._by_card, self._by_card_terminal):
            for key in [key for key, attempts in windows.items() if attempts[-1].at < horizon]:
                del windows[key]  # type: ignore[arg-type]
        for terminal in list(self._by_terminal):
            window = self._by_terminal[terminal]
            window.prune(now - self._terminal_span_s)
            if not window.attempts:
                del self._by_terminal[terminal]
        for card in [card for card, until in self._locked_until.items() if until <= now]:
            del self._locked_until[card]


def _drop_before(attempts: list[Attempt], before: float) -> None:
    """Remove the attempts older than `before` (the list is oldest first)."""
    old = 0
    while old < len(attempts) and attempts[old].at < before:
        old += 1
    del attempts[:old]


def _take(attempts: list[Attempt] | deque[Attempt], tx_id: str) -> Attempt | None:
    """Remove and return attempt `tx_id`, searched newest first: an undo follows its sale."""
    for back, attempt in enumerate(reversed(attempts), start=1):
        if attempt.tx_id == tx_id:
            del attempts[-back]
            return attempt
    return None
