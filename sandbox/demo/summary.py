"""The demo's verdict: does the center hold exactly the ledger's final transactions?"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from rich.table import Table
from sqlalchemy import func, select
from sqlmodel import col

from posgw.center.db import CenterStore
from posgw.center.models import ReceivedEvent
from posgw.gateway.store import FreezeCase, LedgerEntry, Store


@dataclass(slots=True)
class Summary:
    ledger_final: int
    center_received: int
    missing: int  # in the ledger, not at the center
    duplicates: int  # stored at the center more than once
    unexpected: int  # at the center, not in the ledger
    by_outcome: dict[str, int]
    amount_by_outcome: dict[str, int]
    cases_opened: int
    redeliveries_ignored: int
    by_terminal: dict[str, int] = field(default_factory=dict)
    terminal_replies: dict[str, int] = field(default_factory=dict)
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        return (self.missing == 0 and self.duplicates == 0 and self.unexpected == 0
                and self.ledger_final == self.center_received)

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def ledger_ids(store: Store) -> list[str]:
    with store.session() as session:
        return list(session.scalars(select(col(LedgerEntry.event_id))))


def center_ids(center: CenterStore, gateway_id: str) -> list[str]:
    with center.session() as session:
        return list(session.scalars(select(col(ReceivedEvent.event_id))
                                    .where(col(ReceivedEvent.gateway_id) == gateway_id)))


def summarize(store: Store, center: CenterStore, gateway_id: str, *,
              redeliveries_ignored: int, terminal_replies: dict[str, int],
              duration_s: float) -> Summary:
    ledger, received = ledger_ids(store), center_ids(center, gateway_id)
    ledger_set, received_set = set(ledger), set(received)
    with store.session() as session:
        rows = session.execute(select(col(LedgerEntry.status), func.count(),
                                      func.sum(col(LedgerEntry.amount_minor)))
                               .group_by(col(LedgerEntry.status))).all()
        cases = session.scalar(select(func.count()).select_from(FreezeCase)) or 0
        terminals = session.execute(select(col(LedgerEntry.terminal_id), func.count())
                                    .group_by(col(LedgerEntry.terminal_id))).all()
    return Summary(
        ledger_final=len(ledger), center_received=len(received),
        missing=len(ledger_set - received_set),
        duplicates=sum(n - 1 for n in Counter(received).values() if n > 1),
        unexpected=len(received_set - ledger_set),
        by_outcome={status: int(count) for status, count, _ in rows},
        amount_by_outcome={status: int(amount or 0) for status, _, amount in rows},
        cases_opened=int(cases), redeliveries_ignored=redeliveries_ignored,
        by_terminal={terminal: int(count) for terminal, count in terminals},
        terminal_replies=terminal_replies, duration_s=round(duration_s, 1))


def summary_tables(summary: Summary) -> list[Table]:
    outcomes = Table("outcome", "transactions", "amount", title="Transactions by outcome")
    for status in sorted(summary.by_outcome):
        amount = summary.amount_by_outcome.get(status, 0)
        outcomes.add_row(status, str(summary.by_outcome[status]), f"{amount / 100:,.2f}")
    check = Table("check", "value", title="Ledger vs center")
    verdict = "[green]exactly once[/]" if summary.ok else "[red]MISMATCH[/]"
    for name, value in (("ledger final transactions", summary.ledger_final),
                        ("center received", summary.center_received),
                        ("missing at center", summary.missing),
                        ("duplicates at center", summary.duplicates),
                        ("unknown at center", summary.unexpected),
                        ("redeliveries ignored (by event_id)", summary.redeliveries_ignored),
                        ("freeze cases opened", summary.cases_opened)):
        check.add_row(name, str(value))
    check.add_row("verdict", verdict)
    return [outcomes, check]
