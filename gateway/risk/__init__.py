"""Freeze-risk engine: the patterns acquirers freeze funds on.

`RiskEngine` keeps sliding windows of recent attempts per card token and
per terminal, and evaluates the configured rules twice per request:
`before` authorization (a card locked out after wrong PINs is declined
locally) and `after` it (an approval that matches a pattern is frozen:
approved to the terminal, funds held, a case opened). It never reads a
clock or the database: callers pass times in, replay the ledger into
`record` on start, and `undo` an attempt that a reversal or a void
cancelled (it then no longer counts as a swipe or a charge).
"""

from posgw.gateway.risk.engine import RiskEngine
from posgw.gateway.risk.rules import Action, Attempt, Decision, RuleHit
from posgw.gateway.risk.settings import RiskSettings, RuleSettings, parse_risk_settings

__all__ = [
    "Action",
    "Attempt",
    "Decision",
    "RiskEngine",
    "RiskSettings",
    "RuleHit",
    "RuleSettings",
    "parse_risk_settings",
]
