"""The risk engine: sliding windows per card and per terminal.

Cost per attempt is a few dict lookups and list operations on windows that
hold only attempts younger than their rules' longest window, so it does not
grow with the number of cards in state (bench/risk.py measures it). A card's
window serves its card+terminal rules as well, and wrong PINs, judged over
a day, have a window of their own: memory follows the last half hour's
sales, not the whole day's. Windows are pruned when their key is seen
again, and all of them once per shortest window, so a card never seen
again does not stay in memory.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from posgw.protocols.normalize import ResponseCategory, TxKind

from . import rules
from .rules import Action, Attempt, Decision, RuleHit
from .settings import RiskSettings

# Which configured actions each phase evaluates: declines before
# authorization; freezes (approvals only) and alerts after it.
_DECLINING = frozenset({"decline"})
_FREEZING = frozenset({"freeze", "alert"})
#: Rules on a card's window: (name, check, on this terminal only).
_CARD_RULES = (("descending_probe", rules.descending_probe, False),
               ("rapid_repeat", rules.rapid_repeat, True),
               ("duplicate_charge", rules.duplicate_charge, True))
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

    def discard(self, tx_id: str) -> bool:
        """Take out an attempt that was undone; False when it is not here (pruned)."""
        attempt = _take(self.attempts, tx_id)
        if attempt is None:
            return False
        self.amount -= attempt.amount
        self.cards[attempt.card] -= 1
        if not self.cards[attempt.card]:
            del self.cards[attempt.card]
        return True


class RiskEngine:
    def __init__(self, settings: RiskSettings | None = None) -> None:
        self.reconfigure(settings or RiskSettings())
        # Lists, not deques: a card's window mostly holds one or two attempts,
        # and a deque's first block alone is 64 slots (~600 bytes per key).
        # One window per card serves the card+terminal rules too, filtered by
        # terminal: a card's recent attempts are few, and a second map keyed
        # by (card, terminal) cost ~180 bytes more per attempt.
        self._by_card: dict[str, list[Attempt]] = {}
        self._wrong_pins: dict[str, list[Attempt]] = {}
        self._by_terminal: dict[str, _TerminalWindow] = {}
        self._locked_until: dict[str, float] = {}
        self._next_sweep_at: float | None = None

    def reconfigure(self, settings: RiskSettings) -> None:
        """New thresholds take effect at once; window state is kept (SIGHUP reload)."""
        self.settings = settings
        # Derived once here, not per attempt: they are on the hot path. Each
        # window keeps only what its own rules look back on: wrong PINs are
        # judged over a day, but only the wrong PINs need to stay that long.
        self._card_span_s = _span(settings, "rapid_repeat", "duplicate_charge",
                                  "descending_probe")
        self._wrong_pin_span_s = _span(settings, "wrong_pin")
        # The terminal rules share one window; none is kept when both are off.
        self._terminal_span_s = _span(settings, "terminal_velocity", "many_cards")
        spans = (self._card_span_s, self._wrong_pin_span_s, self._terminal_span_s)
        self._sweep_every_s = min((span for span in spans if span), default=0.0)

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
        if self._card_span_s:
            self._by_card.setdefault(attempt.card, []).append(attempt)
        if self._terminal_span_s:
            self._by_terminal.setdefault(attempt.terminal, _TerminalWindow()).add(attempt)
        if attempt.outcome is ResponseCategory.INCORRECT_PIN and self._wrong_pin_span_s:
            self._record_wrong_pin(attempt)

    def _record_wrong_pin(self, attempt: Attempt) -> None:
        """Keep it for the wrong-PIN window; lock the card out at the threshold."""
        rule = self.settings.rule("wrong_pin")
        history = _since(self._window(self._wrong_pins, attempt.card, attempt.at,
                                      self._wrong_pin_span_s), attempt.at - rule.window_s)
        self._wrong_pins.setdefault(attempt.card, []).append(attempt)
        if rule.lockout_s and rules.wrong_pins(history, attempt, rule):
            self._locked_until[attempt.card] = attempt.at + rule.lockout_s

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
        found = _mark_undone(self._by_card.get(card, []), tx_id, terminal)
        window = self._by_terminal.get(terminal)
        if window is not None:
            found = window.discard(tx_id) or found
        return found

    @property
    def lookback_s(self) -> float:
        """How far back the windows of every attempt look (what a warm-up replays)."""
        return max(self._card_span_s, self._terminal_span_s)

    @property
    def wrong_pin_lookback_s(self) -> float:
        """How far back wrong PINs count (0 when the rule is off)."""
        return self._wrong_pin_span_s

    @property
    def keys_in_memory(self) -> int:
        """Cards and terminals that have windows now."""
        return len(self._by_card) + len(self._wrong_pins) + len(self._by_terminal)

    @property
    def attempts_in_memory(self) -> int:
        """Attempts held in the card windows now (what the engine's memory grows with)."""
        return sum(map(len, self._by_card.values())) + sum(map(len, self._wrong_pins.values()))

    def rebuild(self, attempts: Iterable[Attempt]) -> None:
        """Replay the ledger's recent attempts, oldest first, after a restart."""
        for attempt in attempts:
            self.record(attempt)

    def _evaluate(self, attempt: Attempt, actions: frozenset[str]) -> list[RuleHit]:
        """Hits of the enabled rules whose configured action is in `actions`."""
        hits: list[RuleHit | None] = []
        rule = self.settings.rule("wrong_pin")
        if rule.enabled and rule.action in actions:
            history = self._window(self._wrong_pins, attempt.card, attempt.at,
                                   self._wrong_pin_span_s)
            hits.append(rules.wrong_pins(_since(history, attempt.at - rule.window_s), attempt,
                                         rule))
        hits += self._card_hits(attempt, actions)
        hits += self._terminal_hits(attempt, actions)
        return [hit for hit in hits if hit is not None]

    def _card_hits(self, attempt: Attempt, actions: frozenset[str]) -> list[RuleHit | None]:
        """The rules on the card's window, read (and pruned) once for all of them;
        rapid_repeat and duplicate_charge see the card's attempts on this
        terminal that were not undone."""
        wanted = [(self.settings.rule(name), check, per_terminal)
                  for name, check, per_terminal in _CARD_RULES]
        wanted = [entry for entry in wanted if entry[0].enabled and entry[0].action in actions]
        if not wanted:
            return []
        history = self._window(self._by_card, attempt.card, attempt.at, self._card_span_s)
        on_terminal = [a for a in history if a.terminal == attempt.terminal and not a.undone]
        return [check(_since(on_terminal if per_terminal else history,
                             attempt.at - rule.window_s), attempt, rule)
                for rule, check, per_terminal in wanted]

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

    @staticmethod
    def _window(windows: dict[str, list[Attempt]], key: str, now: float,
                span_s: float) -> list[Attempt]:
        """The attempts of `key`, oldest first, after pruning those past `span_s`
        (the list itself: callers only read it)."""
        attempts = windows.get(key)
        if not attempts:
            return []
        _drop_before(attempts, now - span_s)
        if not attempts:
            del windows[key]
        return attempts

    def _sweep(self, now: float) -> None:
        """Once per shortest window: forget every key with nothing left in it
        (most cards are seen once, and are not looked up again to be pruned)."""
        if self._next_sweep_at is not None and now < self._next_sweep_at:
            return
        self._next_sweep_at = now + self._sweep_every_s
        for windows, span_s in ((self._by_card, self._card_span_s),
                                (self._wrong_pins, self._wrong_pin_span_s)):
            for key in [key for key, attempts in windows.items() if attempts[-1].at < now - span_s]:
                del windows[key]
        for terminal in list(self._by_terminal):
            window = self._by_terminal[terminal]
            window.prune(now - self._terminal_span_s)
            if not window.attempts:
                del self._by_terminal[terminal]
        for card in [card for card, until in self._locked_until.items() if until <= now]:
            del self._locked_until[card]


def _span(settings: RiskSettings, *names: str) -> float:
    """The longest window of the named rules that are enabled (0: none is)."""
    return max((settings.rule(name).window_s for name in names if settings.rule(name).enabled),
               default=0.0)


def _mark_undone(attempts: list[Attempt], tx_id: str, terminal: str) -> bool:
    """Mark attempt `tx_id` on `terminal` undone, searched newest first: an undo
    follows its sale. False when it is not there or was undone already."""
    for back, attempt in enumerate(reversed(attempts), start=1):
        if attempt.tx_id == tx_id:
            if attempt.terminal != terminal or attempt.undone:
                return False
            attempts[-back] = replace(attempt, undone=True)
            return True
    return False


def _since(attempts: list[Attempt], start: float) -> list[Attempt]:
    """A copy of the attempts at or after `start` (rules keep what they are given)."""
    return [a for a in attempts if a.at >= start]


def _drop_before(attempts: list[Attempt], before: float) -> None:
    """Remove the attempts older than `before` (the list is oldest first)."""
    old = 0
    while old < len(attempts) and attempts[old].at < before:
        old += 1
    del attempts[:old]


def _take(attempts: deque[Attempt], tx_id: str) -> Attempt | None:
    """Remove and return attempt `tx_id`, searched newest first: an undo follows its sale."""
    for back, attempt in enumerate(reversed(attempts), start=1):
        if attempt.tx_id == tx_id:
            del attempts[-back]
            return attempt
    return None
