"""Prometheus metrics of one gateway daemon, and the HTTP endpoint serving them.

Two kinds of metric, chosen for the request path's cost:

* **Counted on the request path** (transactions by outcome, rule hits, MAC
  failures, response latency): plain integers bumped by the event loop
  thread, the only writer. prometheus-client's own Counter and Histogram
  take a lock per update: measured, its pre-bound counter plus histogram
  cost a request several times what these plain updates do.
* **Read at scrape time** (outbox depth and age, terminal links, broker and
  acquirer connection, requests in flight): nothing is pushed; the scrape
  asks the store, the terminal registry and the forwarder.

`GatewayMetrics` is its own collector in its own `CollectorRegistry`, so
several daemons in one process (tests) never share a metric. The scrape
runs in the endpoint's thread: it copies what the loop writes (`list(...)`
of a dict or a list runs without releasing the GIL), reads single values,
and runs one outbox COUNT on a pooled connection of its own.
"""

from __future__ import annotations

import asyncio
import logging
import platform
import time
from bisect import bisect_left
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import metadata
from typing import TYPE_CHECKING, Protocol

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from posgw.drivers.clock import SYSTEM_CLOCK, Clock
from posgw.gateway.security.command_gate import DROP_REASONS
from posgw.protocols.contract import COMMAND_OUTCOMES, TX_STATUSES

if TYPE_CHECKING:
    from datetime import datetime

    from posgw.gateway.risk import Action, RuleHit

log = logging.getLogger(__name__)
_perf_counter = time.perf_counter

#: Terminal response latency: a few ms for a stand-in answer, seconds when
#: the acquirer is slow; past 5 s a terminal is close to its own timeout.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
#: The ledger statuses (DESIGN contract): shown at 0 from the start, so a
#: rate() over a status that has not happened yet is 0, not absent.
LEDGER_STATUSES = TX_STATUSES
#: Terminal states (gateway.terminals), one 0/1 series each per terminal.
TERMINAL_STATES = ("online", "offline", "draining", "decommissioned")
#: The `le` label of each latency bucket, formatted once.
_LE = (*(repr(bound) for bound in LATENCY_BUCKETS), "+Inf")


class OutboxStats(Protocol):
    """What `Store.outbox_stats()` returns (its class lives with the store)."""

    @property
    def depth(self) -> int: ...

    @property
    def published(self) -> int: ...

    @property
    def pending(self) -> int: ...

    def oldest_age_s(self, now: datetime) -> float | None: ...


class OutboxSource(Protocol):
    def outbox_stats(self) -> OutboxStats: ...


class LinkSource(Protocol):
    def links(self) -> list[tuple[str, str, str]]:
        """(terminal id, driver, state) of every known terminal."""
        ...


class BrokerSource(Protocol):
    @property
    def connected(self) -> asyncio.Event: ...

    @property
    def delivered_total(self) -> int: ...

    @property
    def confirmed_total(self) -> int: ...

    @property
    def republished_total(self) -> int: ...

    @property
    def center_silent(self) -> bool: ...


class UpstreamSource(Protocol):
    @property
    def connected(self) -> bool: ...


class InFlightSource(Protocol):
    @property
    def in_flight(self) -> int: ...


@dataclass(frozen=True, slots=True)
class _Sources:
    outbox: OutboxSource
    links: LinkSource
    broker: BrokerSource
    clock: Clock
    upstream: UpstreamSource | None
    pipeline: InFlightSource | None


class GatewayMetrics:
    """The daemon's metrics; `registry` is what the endpoint serves."""

    def __init__(self, *, gateway_id: str = "", branch_id: str = "") -> None:
        self.registry = CollectorRegistry()
        self._created = time.time()  # the exposition's `_created`: epoch seconds
        self._build = (_version(), platform.python_version(), gateway_id, branch_id)
        # Plain dicts, not collections.Counter: an update of an exact dict is
        # several times faster (the interpreter specializes it).
        self._transactions = dict.fromkeys(LEDGER_STATUSES, 0)
        self._rule_hits: dict[tuple[str, Action], int] = {}
        self._mac_failures: dict[str, int] = {}
        self._latency_buckets = [0] * (len(LATENCY_BUCKETS) + 1)  # the last one is +Inf
        self._latency_sum = 0.0
        #: `[commands] insecure_obey_unsigned` in force (the daemon sets it).
        self.unsigned_commands_obeyed = False
        self._commands = dict.fromkeys(COMMAND_OUTCOMES, 0)
        self._commands_dropped = dict.fromkeys(DROP_REASONS, 0)
        self._outbox_pruned = 0
        self._sources: _Sources | None = None
        self.registry.register(self)

    # -- the request path: event loop thread only; no lock, no labels built ---------

    #: A start mark for `responded`: the performance counter itself (no frame of
    #: ours per call), not the Clock: that may be simulated; latency is real time.
    started = staticmethod(_perf_counter)

    def responded(self, started: float) -> None:
        """A response went out to a terminal; `started` from `started()`."""
        elapsed = _perf_counter() - started
        self._latency_buckets[bisect_left(LATENCY_BUCKETS, elapsed)] += 1
        self._latency_sum += elapsed

    def recorded(self, status: str, hits: Sequence[RuleHit] = ()) -> None:
        """A transaction was committed to the ledger with `status`."""
        try:
            self._transactions[status] += 1
        except KeyError:  # a status added after LEDGER_STATUSES was written
            self._transactions[status] = 1
        for hit in hits:  # empty for nearly every request
            key = (hit.rule, hit.action)
            self._rule_hits[key] = self._rule_hits.get(key, 0) + 1

    def mac_failure(self, terminal_id: str) -> None:
        """A request from `terminal_id` failed MAC verification."""
        self._mac_failures[terminal_id] = self._mac_failures.get(terminal_id, 0) + 1

    def command_answered(self, outcome: str) -> None:
        """A command from the center was answered `outcome` (replays included)."""
        self._commands[outcome] = self._commands.get(outcome, 0) + 1

    def command_dropped(self, reason: str) -> None:
        """A `cmd` payload was dropped unanswered (command_gate.DROP_REASONS)."""
        self._commands_dropped[reason] = self._commands_dropped.get(reason, 0) + 1

    def outbox_pruned(self, rows: int) -> None:
        self._outbox_pruned += rows

    # -- scrape time --------------------------------------------------------------

    def watch(self, *, outbox: OutboxSource, links: LinkSource, broker: BrokerSource,
              clock: Clock = SYSTEM_CLOCK, upstream: UpstreamSource | None = None,
              pipeline: InFlightSource | None = None) -> None:
        """What the scrape reads state from (the daemon calls this once it has them)."""
        self._sources = _Sources(outbox, links, broker, clock, upstream, pipeline)

    def collect(self) -> Iterable[Metric]:
        """prometheus-client's collector interface: every metric, at scrape time."""
        yield _gauge("posgw_build_info", "Version, Python and identity of this gateway (1).",
                     ("version", "python", "gateway_id", "branch_id"), [(self._build, 1)])
        yield from self._counted()
        yield self._latency()
        if self._sources is not None:
            yield from _state(self._sources)

    def _counted(self) -> Iterator[Metric]:
        yield self._counter("posgw_transactions", "Transactions recorded in the ledger, by "
                            "status (settled, frozen, declined, refund, voided, reversed).",
                            ("outcome",), [((k,), v) for k, v in list(self._transactions.items())])
        yield self._counter("posgw_rule_hits", "Risk rule hits, by rule and action "
                            "(decline, freeze, alert).", ("rule", "action"),
                            [((rule, action.name.lower()), v)
                             for (rule, action), v in list(self._rule_hits.items())])
        yield self._counter("posgw_mac_failures", "Requests that failed MAC verification.",
                            ("terminal",), [((k,), v) for k, v in list(self._mac_failures.items())])
        yield from self._command_metrics()

    def _command_metrics(self) -> Iterator[Metric]:
        yield _gauge("posgw_commands_unsigned_obeyed", "1 while this gateway obeys unsigned "
                     "commands ([commands] insecure_obey_unsigned, no center key): anyone who "
                     "can publish on the broker commands it.", (),
                     [((), int(self.unsigned_commands_obeyed))])
        yield self._counter("posgw_commands", "Commands from the center answered, by outcome.",
                            ("outcome",), [((k,), v) for k, v in list(self._commands.items())])
        yield self._counter("posgw_commands_dropped", "cmd payloads dropped unanswered, by "
                            "reason (too_large, not_json, schema, unauthenticated).",
                            ("reason",),
                            [((k,), v) for k, v in list(self._commands_dropped.items())])
        yield CounterMetricFamily("posgw_outbox_pruned", "Delivered outbox rows deleted after "
                                  "[store] keep_delivered_days.", value=self._outbox_pruned,
                                  created=self._created)

    def _counter(self, name: str, doc: str, labels: Sequence[str],
                 samples: Iterable[tuple[tuple[str, ...], int]]) -> Metric:
        family = CounterMetricFamily(name, doc, labels=labels)
        for values, count in samples:
            family.add_metric(values, count, created=self._created)
        return family

    def _latency(self) -> Metric:
        counts = list(self._latency_buckets)  # one consistent copy: count == +Inf bucket
        cumulative, buckets = 0, []
        for le, count in zip(_LE, counts, strict=True):
            cumulative += count
            buckets.append((le, cumulative))
        family = HistogramMetricFamily(
            "posgw_response_seconds", "Terminal response latency: request received to "
            "response encoded (includes the durable commit and any acquirer round trip).",
            labels=())
        family.add_metric((), buckets, self._latency_sum)
        return family


def _state(sources: _Sources) -> Iterator[Metric]:
    yield from _outbox(sources)
    links = sources.links.links()
    yield _gauge("posgw_link_up", "1 while the terminal's line is up (state online).",
                 ("terminal", "driver"),
                 [((tid, driver), int(state == "online")) for tid, driver, state in links])
    yield _gauge("posgw_terminal_state", "1 for the terminal's current state, 0 for the others.",
                 ("terminal", "state"),
                 [((tid, s), int(state == s)) for tid, _, state in links for s in TERMINAL_STATES])
    yield _gauge("posgw_broker_connected", "1 while the MQTT connection to the broker is up.",
                 (), [((), int(sources.broker.connected.is_set()))])
    broker = sources.broker
    yield CounterMetricFamily("posgw_outbox_delivered", "Outbox events acknowledged by the "
                              "broker (PUBACK) since start.", value=broker.delivered_total)
    yield CounterMetricFamily("posgw_outbox_confirmed", "Outbox events the center confirmed "
                              "(stored or quarantined) since start.", value=broker.confirmed_total)
    yield CounterMetricFamily("posgw_outbox_republished", "Events published again because the "
                              "center did not confirm them in time.",
                              value=broker.republished_total)
    yield _gauge("posgw_center_silent", "1 while published events wait past [forward] "
                 "center_silent_after_s and the center confirms nothing.", (),
                 [((), int(broker.center_silent))])
    if sources.upstream is not None:
        yield _gauge("posgw_upstream_connected", "1 while the acquirer host connection is up.",
                     (), [((), int(sources.upstream.connected))])
    if sources.pipeline is not None:
        yield _gauge("posgw_requests_in_flight", "Transactions being decided or committed now.",
                     (), [((), sources.pipeline.in_flight)])


def _outbox(sources: _Sources) -> Iterator[Metric]:
    try:
        stats = sources.outbox.outbox_stats()
    except Exception:  # a scrape is a boundary: the other metrics still go out
        log.warning("metrics: outbox not readable", exc_info=True)
        return
    yield _gauge("posgw_outbox_depth", "Events in the outbox not yet done (confirmed by the "
                 "center; without a center key, acknowledged by the broker).",
                 (), [((), stats.depth)])
    yield _gauge("posgw_outbox_pending", "Events not yet acknowledged by the broker.",
                 (), [((), stats.pending)])
    yield _gauge("posgw_outbox_published_unconfirmed", "Events the broker acknowledged and "
                 "the center has not confirmed yet.", (), [((), stats.published)])
    age = stats.oldest_age_s(sources.clock.utc_now())
    yield _gauge("posgw_outbox_oldest_age_seconds", "Age of the oldest event not done "
                 "(0 when the outbox is empty).", (), [((), age or 0.0)])


def _gauge(name: str, doc: str, labels: Sequence[str],
           samples: Iterable[tuple[Sequence[str], float]]) -> Metric:
    family = GaugeMetricFamily(name, doc, labels=labels)
    for values, value in samples:
        family.add_metric(values, value)
    return family


def _version() -> str:
    try:
        return metadata.version("posgw")
    except metadata.PackageNotFoundError:  # a source checkout that was never installed
        return "unknown"


@asynccontextmanager
async def serve_metrics(metrics: GatewayMetrics, bind: str | None) -> AsyncIterator[int | None]:
    """The endpoint (`GET /metrics`) for the duration of the block; yields its
    port, or None when no endpoint is configured.

    An address that cannot be bound raises OSError: the daemon refuses to
    start (gateway/startup.py) rather than run with monitoring blind.
    """
    if bind is None:
        yield None
        return
    host, _, port = bind.rpartition(":")
    server, thread = start_http_server(int(port), host.strip("[]"), metrics.registry)
    log.info("metrics on http://%s:%d/metrics", host, server.server_port)
    try:
        yield server.server_port
    finally:
        # shutdown() waits for serve_forever's poll loop: not on the event loop.
        await asyncio.to_thread(server.shutdown)
        server.server_close()
        thread.join()
