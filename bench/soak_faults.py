"""The soak's faults, on a fixed schedule from the start of the traffic.

Every `every` seconds the broker gets SIGTERM (mosquitto saves its sessions)
and is started again on the same port `outage` seconds later; every
`kill_every` seconds the gateway gets SIGKILL — nothing of it runs after —
and is started again at once on the same database, as systemd's
`Restart=always` would. A fault is only scheduled when it ends before the
traffic does.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from bench.soak_stack import SoakStack
from posgw.drivers.clock import SYSTEM_CLOCK

log = logging.getLogger("bench.soak")


@dataclass(slots=True)
class Faults:
    broker_restarts: int = 0
    gateway_kills: int = 0
    gateway_back_s: list[float] = field(default_factory=list)  # SIGKILL to listening again
    restarting_gateway: bool = False


async def sleep_until(moment: float) -> None:
    delay = moment - SYSTEM_CLOCK.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)  # the fault schedule, not synchronisation


async def restart_broker_every(stack: SoakStack, every: float, outage: float, start: float,
                               until: float, faults: Faults) -> None:
    k = 1
    while start + k * every + outage < until:
        await sleep_until(start + k * every)
        await asyncio.to_thread(stack.broker.stop)
        faults.broker_restarts += 1
        log.warning("broker stopped (restart %d)", faults.broker_restarts)
        await asyncio.sleep(outage)  # the outage itself is what is under test
        await asyncio.to_thread(stack.broker.start)
        log.warning("broker started again")
        k += 1


async def kill_gateway_every(stack: SoakStack, every: float, start: float, until: float,
                             faults: Faults) -> None:
    k = 1
    while start + k * every < until:
        await sleep_until(start + k * every)
        faults.restarting_gateway = True
        began = SYSTEM_CLOCK.monotonic()
        await asyncio.to_thread(stack.gateway.kill)
        faults.gateway_kills += 1
        log.warning("gateway SIGKILLed (kill %d)", faults.gateway_kills)
        await asyncio.to_thread(stack.start_gateway)
        faults.gateway_back_s.append(SYSTEM_CLOCK.monotonic() - began)
        faults.restarting_gateway = False
        k += 1
