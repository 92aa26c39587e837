"""A transaction's whole story for its page, and the sentence to tell the
customer. Times are UTC; amounts per their currency (center/web/i18n.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from posgw.center.models import ReceivedEvent
from posgw.center.web.i18n import Language
from posgw.protocols.contract import DECLINED, FROZEN, REFUND, REVERSED, SETTLED, VOIDED

#: A freeze case's first response is due this long after the payment (issue 18).
FIRST_RESPONSE = timedelta(hours=24)
_UNDONE = (REVERSED, VOIDED)


@dataclass(frozen=True, slots=True)
class Story:
    event: ReceivedEvent
    linked: list[ReceivedEvent]
    answer: str


def occurred(event: ReceivedEvent) -> datetime:
    return datetime.fromisoformat(event.occurred_at.replace("Z", "+00:00"))


def received(event: ReceivedEvent) -> datetime:
    moment = event.received_at
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def story(event: ReceivedEvent, linked: list[ReceivedEvent], lang: Language) -> Story:
    return Story(event, linked, customer_answer(event, linked, lang))


def customer_answer(event: ReceivedEvent, linked: list[ReceivedEvent], lang: Language) -> str:
    """What to tell the customer about this payment, in plain words."""
    _ = lang.gettext
    arrived = _("Arrived at the center on {received}.").format(
        received=lang.moment(received(event)))
    undone = [other for other in linked if other.status in _UNDONE]
    refunds = [other for other in linked if other.status == REFUND]
    if event.status == DECLINED:
        return _("Declined at the terminal (response code {code}): no money was taken."
                 ).format(code=event.response_code or "?")
    if event.status in _UNDONE or undone:
        when = lang.moment(received(undone[0] if undone else event))
        return " ".join((arrived, _("It was cancelled on {when}: the card is not charged."
                                    ).format(when=when)))
    if refunds:
        return " ".join((arrived, _("A refund of {amount} reached the center on {when}; "
                                    "the card issuer returns it to the card.").format(
            amount=lang.money(refunds[0].amount_minor, refunds[0].currency),
            when=lang.moment(received(refunds[0])))))
    if event.status == FROZEN:
        rules = ", ".join(event.payload.get("risk") or []) or "?"
        return " ".join((arrived, _("The money is held by the risk rules ({rules}): the "
                                    "branch opened a freeze case; a first answer is due by "
                                    "{due}.").format(
            rules=rules, due=lang.moment(occurred(event) + FIRST_RESPONSE))))
    if event.status == REFUND:
        return " ".join((arrived, _("This is a refund: the card issuer returns it to the "
                                    "card.")))
    if event.status == SETTLED:
        return " ".join((arrived, _("Settled: the payment went through.")))
    return arrived
