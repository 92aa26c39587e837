"""The merchant register and its fee plans.

A merchant is known by the terminals' `merchant_id`. Its settlement
account is stored masked (last 4 characters): the register tells which
account a bank credit went to without holding a number anyone could pay
from. Each merchant has at least one fee plan; a plan is in force from its
`effective_from` day until the next plan's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import select
from sqlmodel import Session, col

from posgw.center.settlement.fees import FeePlan
from posgw.center.settlement.tables import FeePlanRow, Merchant
from posgw.protocols.redact import mask_account

MAX_NAME = 128
#: An IBAN is at most 34 characters (ISO 13616); other account ids are shorter.
ACCOUNT_LENGTHS = (6, 34)


class RegisterError(ValueError):
    """A register change refused: the message says what to do instead."""


@dataclass(frozen=True, slots=True)
class MerchantView:
    merchant_id: str
    name: str
    branch_id: str
    account_masked: str
    currency: str
    plans: tuple[FeePlan, ...]  # oldest first


def add_merchant(session: Session, merchant_id: str, name: str, branch_id: str,
                 account: str, currency: str, plan: FeePlan) -> MerchantView:
    """Register a merchant with its first plan; its account is masked here."""
    _check_identifier("merchant id", merchant_id, 32)
    _check_identifier("branch", branch_id, 32)
    name = name.strip()
    if not name or len(name) > MAX_NAME or not name.isprintable():
        raise RegisterError(f"name: 1 to {MAX_NAME} printable characters")
    compact = "".join(account.split())
    if not (ACCOUNT_LENGTHS[0] <= len(compact) <= ACCOUNT_LENGTHS[1]
            and compact.isascii() and compact.isalnum()):
        raise RegisterError(f"account: {ACCOUNT_LENGTHS[0]} to {ACCOUNT_LENGTHS[1]} letters "
                            "or digits (an IBAN or the bank's account number)")
    if len(currency) != 3 or not currency.isascii() or not currency.isalpha():
        raise RegisterError("currency: an ISO 4217 code such as VND")
    if session.get(Merchant, merchant_id) is not None:
        raise RegisterError(f"merchant {merchant_id} is already registered "
                            "(`merchants set-plan` changes its plan)")
    now = datetime.now(UTC)
    session.add(Merchant(merchant_id=merchant_id, name=name, branch_id=branch_id,
                         account_masked=mask_account(compact), currency=currency.upper(),
                         added_at=now))
    session.flush()
    session.add(_plan_row(merchant_id, plan, now))
    session.commit()
    return show_merchant(session, merchant_id)


def set_plan(session: Session, merchant_id: str, plan: FeePlan) -> MerchantView:
    """Add a plan in force from `plan.effective_from`; plans are history, so
    one already starting that day is refused rather than overwritten."""
    if session.get(Merchant, merchant_id) is None:
        raise RegisterError(f"no merchant {merchant_id} (`merchants add` registers it)")
    day = plan.effective_from.isoformat()
    taken = session.scalars(select(FeePlanRow).where(
        col(FeePlanRow.merchant_id) == merchant_id,
        col(FeePlanRow.effective_from) == day)).first()
    if taken is not None:
        raise RegisterError(f"{merchant_id} already has a plan from {day}; "
                            "give the new plan another --from day")
    session.add(_plan_row(merchant_id, plan, datetime.now(UTC)))
    session.commit()
    return show_merchant(session, merchant_id)


def show_merchant(session: Session, merchant_id: str) -> MerchantView:
    merchant = session.get(Merchant, merchant_id)
    if merchant is None:
        raise RegisterError(f"no merchant {merchant_id}")
    return _view(merchant, plans_of(session, merchant_id))


def list_merchants(session: Session, limit: int = 10_000,
                   branch_id: str | None = None) -> list[MerchantView]:
    """The first `limit` merchants by id (one branch's with `branch_id`),
    each with its plans."""
    query = select(Merchant).order_by(col(Merchant.merchant_id)).limit(limit)
    if branch_id is not None:
        query = query.where(col(Merchant.branch_id) == branch_id)
    merchants = session.scalars(query).all()
    ids = [merchant.merchant_id for merchant in merchants]
    plans: dict[str, list[FeePlan]] = {}
    for row in session.scalars(select(FeePlanRow).where(col(FeePlanRow.merchant_id).in_(ids))
                               .order_by(col(FeePlanRow.effective_from))):
        plans.setdefault(row.merchant_id, []).append(plan_of(row))
    return [_view(merchant, plans.get(merchant.merchant_id, [])) for merchant in merchants]


def plans_of(session: Session, merchant_id: str) -> list[FeePlan]:
    rows = session.scalars(select(FeePlanRow).where(col(FeePlanRow.merchant_id) == merchant_id)
                           .order_by(col(FeePlanRow.effective_from)))
    return [plan_of(row) for row in rows]


def plan_in_force(plans: Sequence[FeePlan], day: date) -> FeePlan | None:
    """The plan of `day` among a merchant's plans (oldest first)."""
    current = None
    for plan in plans:
        if plan.effective_from <= day:
            current = plan
    return current


def plan_of(row: FeePlanRow) -> FeePlan:
    return FeePlan(date.fromisoformat(row.effective_from), row.rate_ppm, row.fixed_minor,
                   row.minimum_minor, row.cap_minor)


def _plan_row(merchant_id: str, plan: FeePlan, now: datetime) -> FeePlanRow:
    return FeePlanRow(merchant_id=merchant_id, effective_from=plan.effective_from.isoformat(),
                      rate_ppm=plan.rate_ppm, fixed_minor=plan.fixed_minor,
                      minimum_minor=plan.minimum_minor, cap_minor=plan.cap_minor, set_at=now)


def _view(merchant: Merchant, plans: Sequence[FeePlan]) -> MerchantView:
    return MerchantView(merchant.merchant_id, merchant.name, merchant.branch_id,
                        merchant.account_masked, merchant.currency, tuple(plans))


def _check_identifier(what: str, value: str, max_length: int) -> None:
    if not (value and len(value) <= max_length and value.isascii()
            and all(c.isalnum() or c in "-_." for c in value)):
        raise RegisterError(f"{what}: 1 to {max_length} letters, digits, '-', '_' or '.'; "
                            f"got {value!r}")
