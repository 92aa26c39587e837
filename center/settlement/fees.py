"""A merchant's fee plan, and the fee it charges one transaction.

The rate is kept exactly, in parts per million of the amount (0.6 % is
6,000 ppm), never as a float. The fee of one sale is

    round_half_up(amount * rate_ppm / 1,000,000) + fixed_minor,

then raised to the plan's minimum and lowered to its cap (both per
transaction, both optional). Rounding is to the currency's minor unit,
half up, per transaction: amounts are integers in minor units, so for VND
(no minor unit) the fee is a whole number of dong, for EUR of cents.
`fee_sql` is the same rule as a SQL expression, so a day's fees are summed
in the database; both are tested against each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation

PPM = 1_000_000
#: The standard merchant plan: 0.6 % of the amount, no fixed fee, no minimum, no cap.
DEFAULT_RATE_PPM = 6_000
#: A rate above 10 % is a typing error, not a card-acquiring contract.
MAX_RATE_PPM = 100_000
#: One transaction's fixed fee, minimum or cap: a bound, in minor units.
MAX_FEE_MINOR = 10**12


class FeePlanError(ValueError):
    """A fee plan that cannot be: the message names the part that is wrong."""


@dataclass(frozen=True, slots=True)
class FeePlan:
    effective_from: date
    rate_ppm: int = DEFAULT_RATE_PPM
    fixed_minor: int = 0
    minimum_minor: int | None = None
    cap_minor: int | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.rate_ppm <= MAX_RATE_PPM:
            raise FeePlanError(f"rate must be between 0 % and {percent(MAX_RATE_PPM)}")
        for name in ("fixed_minor", "minimum_minor", "cap_minor"):
            value = getattr(self, name)
            if value is not None and not 0 <= value <= MAX_FEE_MINOR:
                raise FeePlanError(f"{name.removesuffix('_minor')} must be between 0 "
                                   f"and {MAX_FEE_MINOR}")
        if (self.minimum_minor is not None and self.cap_minor is not None
                and self.minimum_minor > self.cap_minor):
            raise FeePlanError("the minimum is above the cap")

    def fee_minor(self, amount_minor: int) -> int:
        """The fee of one sale of `amount_minor` (the rule in the module doc)."""
        fee = (amount_minor * self.rate_ppm + PPM // 2) // PPM + self.fixed_minor
        if self.minimum_minor is not None:
            fee = max(fee, self.minimum_minor)
        if self.cap_minor is not None:
            fee = min(fee, self.cap_minor)
        return fee

    def in_words(self) -> str:
        """E.g. "0.6 % of the amount, no fixed fee per transaction"."""
        words = [f"{percent(self.rate_ppm)} of the amount",
                 f"fixed {self.fixed_minor} per transaction" if self.fixed_minor
                 else "no fixed fee per transaction"]
        if self.minimum_minor is not None:
            words.append(f"minimum {self.minimum_minor}")
        if self.cap_minor is not None:
            words.append(f"cap {self.cap_minor}")
        return ", ".join(words)


def percent(rate_ppm: int) -> str:
    """6000 -> "0.6 %" (exact: as many decimals as the rate has)."""
    return f"{(Decimal(rate_ppm) / 10_000).normalize():f} %"


def parse_rate(text: str) -> int:
    """A percentage as typed ("0.6", "0.6%", "0.62 %") in ppm, exactly; more
    than four decimals of a percent, or anything else, is refused."""
    try:
        value = Decimal(text.strip().removesuffix("%").strip())
    except InvalidOperation:
        raise FeePlanError(f"rate: a percentage such as 0.6; got {text!r}") from None
    ppm = value * 10_000
    if not value.is_finite() or ppm != ppm.to_integral_value():
        raise FeePlanError(f"rate: at most four decimals of a percent; got {text!r}")
    if not 0 <= ppm <= MAX_RATE_PPM:
        raise FeePlanError(f"rate must be between 0 % and {percent(MAX_RATE_PPM)}; "
                           f"got {text!r}")
    return int(ppm)


def fee_sql(amount: str, rate: str, fixed: str, minimum: str, cap: str) -> str:
    """`FeePlan.fee_minor` as a SQL expression over the named columns (the
    same in SQLite and PostgreSQL: integer division truncates, which is the
    floor for the non-negative amounts it is given). Bigint: amount times
    rate passes 2^31."""
    raw = (f"((CAST({amount} AS BIGINT) * {rate} + {PPM // 2}) / {PPM} + {fixed})")
    floored = f"(CASE WHEN {minimum} IS NOT NULL AND {raw} < {minimum} THEN {minimum} " \
              f"ELSE {raw} END)"
    return f"(CASE WHEN {cap} IS NOT NULL AND {floored} > {cap} THEN {cap} ELSE {floored} END)"
