"""The soak's verdict and its report: the ledger against the center, counted.

lost        final transactions in the gateway's ledger the center does not hold
duplicated  events stored at the center more than once (by event_id)
unknown     events at the center the ledger does not hold
approvals not in ledger
            (terminal, STAN) of a purchase, refund or void a terminal heard
            approved that the ledger does not hold as approved

The comparison itself is the demo's (`gateway/cli_demo/summary.py`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlmodel import col

from posgw.center.db import CenterStore
from posgw.center.models import ReceivedEvent
from posgw.gateway.store import LedgerEntry, Store
from posgw.sandbox.demo.summary import Summary, summarize
from posgw.simulator.loadgen import percentile

LABEL_WIDTH = 24


def ledger_count(store: Store) -> int:
    with store.session() as session:
        return int(session.scalar(select(func.count()).select_from(LedgerEntry)) or 0)


def center_count(center: CenterStore) -> int:
    with center.session() as session:
        return int(session.scalar(select(func.count()).select_from(ReceivedEvent)) or 0)


def ledger_approvals(store: Store) -> set[tuple[str, str]]:
    query = (select(col(LedgerEntry.terminal_id), col(LedgerEntry.stan))
             .where(col(LedgerEntry.response_code) == "00"))
    with store.session() as session:
        return {(terminal, stan) for terminal, stan in session.execute(query)}


def milliseconds(samples: list[float], q: float) -> float:
    return round(percentile(sorted(samples), q) * 1000, 1) if samples else 0.0


@dataclass(slots=True)
class SoakReport:
    machine: str
    broker: str
    center_subscription: str  # "plain" or "shared ($share/GROUP)"
    centers: int  # center processes
    center_store: str  # "SQLite" or "PostgreSQL <major> (private server)"
    minutes: float
    target_rate: float
    tcp_terminals: int
    traffic_s: float
    requests: int
    answered: int
    unanswered: int
    retransmissions: int
    redials: int
    answered_by_link: dict[str, int]
    latency_p50_ms: float
    latency_p99_ms: float
    schedule_lag_p99_ms: float
    schedule_lag_max_ms: float
    broker_restarts: int  # SIGTERM
    broker_kills: int  # SIGKILL
    broker_outage_s: float
    gateway_kills: int
    gateway_back_max_s: float  # SIGKILL to listening again, worst of the kills
    center_kills: int
    center_kills_mid_ingest: int  # the center database grew just before the kill
    center_back_max_s: float  # SIGKILL to subscribed again, worst of the kills
    postgres_restarts: int  # crashes (immediate stop) and starts
    postgres_outage_s: float
    max_outbox_depth: int
    #: Time to complete: from the last request of the traffic to the center
    #: holding as many events as the ledger; -1 when it never did.
    complete_s: float
    drained_s: float  # the same, and the gateway's outbox empty as well
    gateway_exit_code: int  # after the final SIGTERM
    ledger_final: int
    center_count: int
    lost: int
    duplicated: int
    unknown_at_center: int
    redeliveries_ignored: int | None  # the center's count; None if it did not report
    approvals_not_in_ledger: int
    by_outcome: dict[str, int] = field(default_factory=dict)
    terminal_replies: dict[str, int] = field(default_factory=dict)
    cpu_cores: dict[str, float] = field(default_factory=dict)  # CPU s / wall s, whole run
    #: The center's CPU time per message it handled (stored or a redelivery), and
    #: what checking one payload against its JSON Schema costs (bench/schema_cost.py).
    center_cpu_us_per_event: float = 0.0
    schema_check_us_per_event: float = 0.0

    @property
    def schema_check_share(self) -> float:
        """The schema check's part of the center's CPU per event, in percent."""
        if not self.center_cpu_us_per_event:
            return 0.0
        return 100 * self.schema_check_us_per_event / self.center_cpu_us_per_event

    @property
    def achieved_rate(self) -> float:
        return self.answered / self.traffic_s if self.traffic_s else 0.0

    @property
    def ok(self) -> bool:
        return (self.lost == 0 and self.duplicated == 0 and self.unknown_at_center == 0
                and self.approvals_not_in_ledger == 0 and self.ledger_final == self.center_count)

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "achieved_rate": round(self.achieved_rate, 1), "ok": self.ok,
                "schema_check_share_pct": round(self.schema_check_share, 2)}

    def lines(self) -> list[str]:
        links = ", ".join(f"{link} {count:,}" for link, count in sorted(
            self.answered_by_link.items()))
        outcomes = ", ".join(f"{status} {count:,}" for status, count in sorted(
            self.by_outcome.items()))
        redeliveries = ("not reported" if self.redeliveries_ignored is None
                        else f"{self.redeliveries_ignored:,}")
        verdict = ("exactly once: zero lost, zero duplicated" if self.ok
                   else "MISMATCH: see lost, duplicated, unknown and approvals above")
        rows = [
            ("machine", f"{self.machine}; broker: {self.broker}"),
            ("center", f"{self.centers} posgw center process"
                       f"{'es' if self.centers > 1 else ''}, {self.center_store}, persistent "
                       f"session{'s' if self.centers > 1 else ''}, "
                       f"{self.center_subscription} subscription"),
            ("terminals", f"1 serial (ecr-stx-lrc on a pty), 1 USB (unionpay-tpdu, emulated "
                          f"device via pyusb), {self.tcp_terminals} TCP (iso87-ascii)"),
            ("traffic", f"{self.traffic_s / 60:.1f} min, {self.requests:,} requests, "
                        f"{self.answered:,} answered, {self.unanswered:,} given up"),
            ("rate", f"{self.target_rate:g} tx/s target (open loop), "
                     f"{self.achieved_rate:.1f} tx/s achieved"),
            ("answered by link", links),
            ("latency", f"p50 {self.latency_p50_ms:.1f} ms, p99 {self.latency_p99_ms:.1f} ms "
                        "(request to answer, retransmissions included)"),
            ("schedule lag", f"p99 {self.schedule_lag_p99_ms:.1f} ms, "
                             f"max {self.schedule_lag_max_ms:,.0f} ms"),
            ("broker restarts", f"{self.broker_restarts} SIGTERM, {self.broker_kills} SIGKILL "
                                f"(down {self.broker_outage_s:g} s each, persistence on)"),
            ("gateway SIGKILLs", f"{self.gateway_kills} (listening again "
                                 f"{self.gateway_back_max_s:.1f} s after, at worst)"),
            ("center SIGKILLs", f"{self.center_kills}, {self.center_kills_mid_ingest} of them "
                                f"mid-ingest (subscribed again {self.center_back_max_s:.1f} s "
                                "after, at worst)"),
            ("PostgreSQL crashes", (f"{self.postgres_restarts} (pg_ctl stop -m immediate, "
                                    f"down {self.postgres_outage_s:g} s each)"
                                    if self.center_store != "SQLite" else "none (SQLite)")),
            ("terminal recoveries", f"{self.retransmissions:,} retransmissions, "
                                    f"{self.redials:,} redials"),
            ("max outbox depth", f"{self.max_outbox_depth:,} events"),
            ("cpu (cores, average)", ", ".join(f"{name} {cores:.2f}" for name, cores
                                              in self.cpu_cores.items())),
            ("center cpu per event", f"{self.center_cpu_us_per_event:,.0f} µs; JSON Schema check "
                                     f"{self.schema_check_us_per_event:.1f} µs/event = "
                                     f"{self.schema_check_share:.1f} % of it"),
            ("time to complete", (f"{self.complete_s:.1f} s after the traffic the center "
                                  "held every ledger event" if self.complete_s >= 0
                                  else "the center NEVER held every ledger event")),
            ("drained", (f"outbox empty and center complete {self.drained_s:.1f} s after "
                         "the traffic" if self.drained_s >= 0
                         else "NOT drained after the traffic")
                        + f"; gateway SIGTERM exit code {self.gateway_exit_code}"),
            ("ledger final", f"{self.ledger_final:,} ({outcomes})"),
            ("center holds", f"{self.center_count:,}"),
            ("lost", f"{self.lost:,}"),
            ("duplicated", f"{self.duplicated:,} (redeliveries ignored by event_id: "
                           f"{redeliveries})"),
            ("unknown at center", f"{self.unknown_at_center:,}"),
            ("approvals not in ledger", f"{self.approvals_not_in_ledger:,}"),
            ("verdict", verdict),
        ]
        return [f"{label:<{LABEL_WIDTH}}{value}" for label, value in rows]


def compare(database: str, center_database: str, gateway_id: str, *,
            terminal_approvals: set[tuple[str, str]], redeliveries_ignored: int | None,
            ) -> tuple[Summary, int]:
    """The demo's ledger-vs-center summary, and approvals the ledger lacks."""
    with Store(database) as store:
        center = CenterStore(center_database, create=False)
        try:
            summary = summarize(store, center, gateway_id,
                                redeliveries_ignored=redeliveries_ignored or 0,
                                terminal_replies={}, duration_s=0.0)
        finally:
            center.close()
        missing_approvals = len(terminal_approvals - ledger_approvals(store))
    return summary, missing_approvals
