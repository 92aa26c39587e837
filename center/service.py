"""`posgw center -c center.toml`: the ingest as a process, until SIGINT or SIGTERM.

On a signal the ingest task is cancelled: the message in hand is either
committed and acknowledged or neither, the MQTT connection is closed
normally (the persistent session stays with the broker), and the database
is closed. Whatever was not acknowledged is redelivered on the next start.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

from posgw.center.config import CenterConfig
from posgw.center.db import CenterStore
from posgw.center.ingest import CenterIngest
from posgw.center.registry import GatewayTrust

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@dataclass(frozen=True, slots=True)
class IngestCounts:
    ingested: int
    duplicates: int
    quarantined: int
    quarantined_by_kind: dict[str, int]


def serve(config: CenterConfig) -> IngestCounts:
    """Run the center until SIGINT or SIGTERM; the counts of this run.

    Raises SQLAlchemyError or OSError when the database cannot be opened.
    """
    return asyncio.run(_serve(config))


async def _serve(config: CenterConfig) -> IngestCounts:
    store = await asyncio.to_thread(CenterStore, config.database)
    # center.toml's gateways and those registered by command, followed live.
    trust = GatewayTrust(config.gateways, store)
    ingest = CenterIngest(store, trust, config.mqtt,
                          max_clock_skew=timedelta(seconds=config.max_clock_skew_s),
                          max_event_age=timedelta(seconds=config.max_event_age_s))
    try:
        with _stop_on_signals() as stop:
            async with asyncio.TaskGroup() as group:
                ingesting = group.create_task(ingest.run())
                await stop.wait()
                ingesting.cancel()
    finally:
        store.close()
    return IngestCounts(ingest.ingested, ingest.duplicates, ingest.quarantined,
                        dict(ingest.quarantined_by_kind))


@contextmanager
def _stop_on_signals() -> Iterator[asyncio.Event]:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, stop.set)
    try:
        yield stop
    finally:
        for signum in STOP_SIGNALS:
            loop.remove_signal_handler(signum)
