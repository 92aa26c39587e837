"""The soak's faults, each on a fixed schedule from the start of the traffic.

- broker SIGTERM (`every`): mosquitto saves its sessions, and comes back on
  the same port `outage` seconds later;
- broker SIGKILL (`kill_every`): a power cut or the OOM killer — nothing is
  saved, what the broker held only in memory (PUBACKed messages queued for
  a center) is gone; back `outage` seconds later, from whatever persistence
  file an earlier SIGTERM left;
- gateway SIGKILL: nothing of it runs after; started again at once on the
  same database, as systemd's `Restart=always` would;
- center SIGKILL, each center on its own schedule (staggered when there are
  several), timed while the center database is growing — mid-batch — and
  started again at once;
- PostgreSQL crash (`pg_ctl stop -m immediate`, the centers' private
  server): back `outage` seconds later, recovering from its WAL.

A fault is only scheduled when it ends before the traffic does; an interval
of 0 (or less) turns it off. The two broker faults never overlap: they share
one lock.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from sqlalchemy.exc import SQLAlchemyError

from bench.soak_report import center_count
from bench.soak_stack import SoakStack
from posgw.center.db import CenterStore
from posgw.drivers.clock import SYSTEM_CLOCK

log = logging.getLogger("bench.soak")

#: How long a center kill waits to see the center database grow (a commit
#: under way) before killing anyway; how often it looks meanwhile.
INGEST_WATCH_S = 5.0
INGEST_POLL_S = 0.05


@dataclass(slots=True)
class Faults:
    broker_restarts: int = 0  # SIGTERM
    broker_kills: int = 0  # SIGKILL
    gateway_kills: int = 0
    center_kills: int = 0
    center_kills_mid_ingest: int = 0  # the center database grew just before the kill
    postgres_restarts: int = 0
    gateway_back_s: list[float] = field(default_factory=list)  # SIGKILL to listening again
    center_back_s: list[float] = field(default_factory=list)  # SIGKILL to subscribed again
    restarting_gateway: bool = False
    restarting_centers: set[int] = field(default_factory=set)
    broker_lock: asyncio.Lock = field(default_factory=asyncio.Lock)


def moments(start: float, every: float, until: float, *, offset: float = 0.0,
            lasting: float = 0.0) -> Iterator[float]:
    """start + offset + k * every (k = 1, 2, ...) while the fault ends before `until`."""
    if every <= 0:
        return
    k = 1
    while (moment := start + offset + k * every) + lasting < until:
        yield moment
        k += 1


async def sleep_until(moment: float) -> None:
    delay = moment - SYSTEM_CLOCK.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)  # the fault schedule, not synchronisation


async def broker_outages(stack: SoakStack, every: float, outage: float, start: float,
                         until: float, faults: Faults, *, kill: bool) -> None:
    """SIGTERM (kill=False) or SIGKILL (kill=True) the broker; start it `outage` s later."""
    how = "SIGKILLed" if kill else "stopped (SIGTERM)"
    for moment in moments(start, every, until, lasting=outage):
        await sleep_until(moment)
        async with faults.broker_lock:
            await asyncio.to_thread(stack.broker.kill if kill else stack.broker.stop)
            if kill:
                faults.broker_kills += 1
            else:
                faults.broker_restarts += 1
            log.warning("broker %s (%d)", how, faults.broker_kills if kill
                        else faults.broker_restarts)
            await asyncio.sleep(outage)  # the outage itself is what is under test
            await asyncio.to_thread(stack.broker.start)
            log.warning("broker started again")


async def kill_gateway_every(stack: SoakStack, every: float, start: float, until: float,
                             faults: Faults) -> None:
    for moment in moments(start, every, until):
        await sleep_until(moment)
        faults.restarting_gateway = True
        began = SYSTEM_CLOCK.monotonic()
        await asyncio.to_thread(stack.gateway.kill)
        faults.gateway_kills += 1
        log.warning("gateway SIGKILLed (kill %d)", faults.gateway_kills)
        await asyncio.to_thread(stack.start_gateway)
        faults.gateway_back_s.append(SYSTEM_CLOCK.monotonic() - began)
        faults.restarting_gateway = False


def stored_now(center: CenterStore) -> int | None:
    """Events the center database holds; None while it cannot be read (PostgreSQL down)."""
    try:
        return center_count(center)
    except SQLAlchemyError:
        return None


def database_grows(database: str) -> bool:
    """Whether the center database grows within INGEST_WATCH_S: some center
    is committing a batch right now (polled, with a deadline)."""
    center = CenterStore(database, create=False)
    try:
        first = None
        deadline = time.monotonic() + INGEST_WATCH_S
        while time.monotonic() < deadline:
            now = stored_now(center)
            if first is None:
                first = now
            elif now is not None and now > first:
                return True
            time.sleep(INGEST_POLL_S)  # polling the database, with a deadline
        return False
    finally:
        center.close()


async def kill_center_every(stack: SoakStack, index: int, every: float, start: float,
                            until: float, faults: Faults) -> None:
    """SIGKILL center `index` while the centers are storing, start it again at once.

    Several centers are staggered over the interval, so they are killed
    one at a time and the group is never empty for long."""
    offset = every * index / len(stack.centers)
    for moment in moments(start, every, until, offset=offset):
        await sleep_until(moment)
        mid_ingest = await asyncio.to_thread(database_grows, stack.center_database)
        faults.restarting_centers.add(index)
        began = SYSTEM_CLOCK.monotonic()
        await asyncio.to_thread(stack.centers[index].kill)
        faults.center_kills += 1
        faults.center_kills_mid_ingest += mid_ingest
        log.warning("center %d SIGKILLed (%s)", index + 1,
                    "mid-ingest" if mid_ingest else "its database idle")
        await asyncio.to_thread(stack.start_center, index)
        faults.center_back_s.append(SYSTEM_CLOCK.monotonic() - began)
        faults.restarting_centers.discard(index)


async def restart_postgres_every(stack: SoakStack, every: float, outage: float, start: float,
                                 until: float, faults: Faults) -> None:
    if stack.postgres is None:
        return
    for moment in moments(start, every, until, lasting=outage):
        await sleep_until(moment)
        await asyncio.to_thread(stack.postgres.crash)
        faults.postgres_restarts += 1
        log.warning("PostgreSQL crashed (immediate stop %d)", faults.postgres_restarts)
        await asyncio.sleep(outage)  # the outage itself is what is under test
        await asyncio.to_thread(stack.postgres.start)
        log.warning("PostgreSQL started again")
