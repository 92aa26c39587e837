"""`posgw center -c center.toml`: the ingest as a process, until SIGINT or SIGTERM.

On a signal the ingest task is cancelled: the message in hand is either
committed and acknowledged or neither, the MQTT connection is closed
normally (the persistent session stays with the broker), and the database
is closed. Whatever was not acknowledged is redelivered on the next start.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from posgw.center.command_key import load_command_key
from posgw.center.config import CenterConfig
from posgw.center.db import CenterStore
from posgw.center.ingest import CenterIngest
from posgw.center.registry import GatewayTrust
from posgw.center.seq_gaps import SeqGapWatcher, watch

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class IngestCounts:
    ingested: int
    duplicates: int
    quarantined: int
    quarantined_by_kind: dict[str, int]
    seq_missing: int = 0  # gateways' seqs missing at the last gap check


def serve(config: CenterConfig) -> IngestCounts:
    """Run the center until SIGINT or SIGTERM; the counts of this run.

    Raises SQLAlchemyError or OSError when the database cannot be opened,
    CommandKeyError when `[center] command_key` cannot be used.
    """
    return asyncio.run(_serve(config, confirming_key(config)))


def confirming_key(config: CenterConfig) -> Ed25519PrivateKey | None:
    """The key confirmations are signed with, loaded at start (same 0600
    check as `posgw center cmd`); without one, said loudly."""
    if config.command_key_path is not None:
        return load_command_key(config.command_key_path)
    log.error("no [center] command_key: this center cannot tell gateways what it stored, "
              "so gateways that expect confirmations keep every event and publish it "
              "again; `posgw center command-key DIR` makes one")
    return None


async def _serve(config: CenterConfig, command_key: Ed25519PrivateKey | None) -> IngestCounts:
    store = await asyncio.to_thread(CenterStore, config.database)
    # center.toml's gateways and those registered by command, followed live.
    trust = GatewayTrust(config.gateways, store)
    ingest = CenterIngest(store, trust, config.mqtt,
                          max_clock_skew=timedelta(seconds=config.max_clock_skew_s),
                          max_event_age=timedelta(seconds=config.max_event_age_s),
                          command_key=command_key,
                          quarantine_rows_per_source=config.quarantine_rows_per_source)
    gaps = SeqGapWatcher(store, lambda: trust.verifier.gateway_ids,
                         settle_s=config.seq_gap_settle_s)
    try:
        with _stop_on_signals() as stop:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(ingest.run()), group.create_task(watch(gaps))]
                await stop.wait()
                for task in tasks:
                    task.cancel()
    finally:
        store.close()
    return IngestCounts(ingest.ingested, ingest.duplicates, ingest.quarantined,
                        dict(ingest.quarantined_by_kind), gaps.missing_total)


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
