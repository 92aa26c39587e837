"""Rule settings: enabled, thresholds, windows, action — from `[risk.rules.<name>]`.

Defaults follow acquirer practice (issue #5): 3 wrong PINs a day lock a
card for a day; acquirers advise 3-5 minutes between swipes of one card;
probing runs are judged over 30 minutes; a duplicate is the same charge
within 120 s.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from posgw.protocols.config_error import ConfigError
from posgw.protocols.tables import TableReader

HOUR = 3600.0


@dataclass(frozen=True, slots=True)
class RuleSettings:
    enabled: bool = True
    threshold: int = 3
    window_s: float = 300.0
    action: str = "freeze"  # "freeze", "decline", "alert"
    lockout_s: float = 0.0  # wrong_pin only: local decline period after the threshold
    amount_limit: int = 0  # terminal_velocity only: minor units per window (0 = no limit)


DEFAULT_RULES: Mapping[str, RuleSettings] = {
    "wrong_pin": RuleSettings(threshold=3, window_s=24 * HOUR, lockout_s=24 * HOUR),
    "rapid_repeat": RuleSettings(threshold=3, window_s=300.0),
    "descending_probe": RuleSettings(threshold=3, window_s=1800.0),
    "duplicate_charge": RuleSettings(threshold=2, window_s=120.0),
    "terminal_velocity": RuleSettings(threshold=500, window_s=HOUR, amount_limit=0),
    "many_cards": RuleSettings(threshold=50, window_s=HOUR, action="alert"),
}


@dataclass(frozen=True, slots=True)
class RiskSettings:
    rules: Mapping[str, RuleSettings] = field(default_factory=lambda: dict(DEFAULT_RULES))

    def rule(self, name: str) -> RuleSettings:
        return self.rules[name]

    @property
    def longest_window_s(self) -> float:
        return max((r.window_s for r in self.rules.values() if r.enabled), default=0.0)


def parse_risk_settings(table: Mapping[str, Any], source: str = "") -> RiskSettings:
    """The `[risk]` table: `[risk.rules.rapid_repeat] threshold = 4` overrides one default."""
    risk = TableReader(table, "risk", source, error=ConfigError)
    rules_table = risk.sub("rules")
    risk.reject_unknown()
    rules = dict(DEFAULT_RULES)
    for name in rules_table.raw_table:
        if name not in DEFAULT_RULES:
            rules_table.fail(name, f"unknown rule; rules: {', '.join(sorted(DEFAULT_RULES))}")
        rules[name] = _rule(rules_table.sub(name), DEFAULT_RULES[name])
    return RiskSettings(rules)


def _rule(reader: TableReader, default: RuleSettings) -> RuleSettings:
    rule = replace(
        default,
        enabled=reader.flag("enabled", default.enabled),
        threshold=reader.integer("threshold", default.threshold, 1),
        window_s=float(reader.integer("window_s", int(default.window_s), 1)),
        action=reader.choice("action", ("freeze", "decline", "alert"), default.action),
        lockout_s=float(reader.integer("lockout_s", int(default.lockout_s), 0)),
        amount_limit=reader.integer("amount_limit", default.amount_limit, 0),
    )
    reader.reject_unknown()
    return rule
