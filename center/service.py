"""`posgw center -c center.toml`: the ingest as a process, until SIGINT or SIGTERM.

On a signal the ingest task is cancelled: the message in hand is either
committed and acknowledged or neither, the MQTT connection is closed
normally (the persistent session stays with the broker), and the database
is closed. Whatever was not acknowledged is redelivered on the next start.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from posgw.center.command_key import CommandKeyError, load_command_key
from posgw.center.config import CenterConfig
from posgw.center.db import CenterStore
from posgw.center.ingest import CenterIngest
from posgw.center.registry import GatewayTrust
from posgw.center.seq_gaps import SeqGapWatcher, watch
from posgw.center.startup import open_center_store
from posgw.drivers.mqtt_tls import tls_problem
from posgw.protocols.config_error import ConfigError

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
#: Allocations between young-generation collections (CPython's default is
#: 700). A batch of 500 messages allocates some 50 container objects each and
#: keeps them until it is committed; at 700 the collector ran every dozen
#: messages and promoted whole batches to the old generations, whose scans
#: took 12 % of the center's CPU (py-spy, bench/center.py).
GC_YOUNG_THRESHOLD = 50_000
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class IngestCounts:
    ingested: int
    duplicates: int
    quarantined: int
    quarantined_by_kind: dict[str, int]
    seq_missing: int = 0  # gateways' seqs missing at the last gap check


@dataclass(frozen=True, slots=True)
class CenterStart:
    """What the ingest needs opened before it runs (`open_center`)."""

    store: CenterStore
    command_key: Ed25519PrivateKey | None


def open_center(config: CenterConfig) -> CenterStart:
    """The broker's TLS files, the database and the command key, tried before
    anything runs: a problem is a ConfigError naming its key (one line, exit 2)."""
    tls = tls_problem(config.mqtt)
    if tls is not None:
        raise ConfigError(f"mqtt.{tls[0]}", tls[1], config.source)
    store = open_center_store(config)
    try:
        return CenterStart(store, confirming_key(config))
    except CommandKeyError as exc:
        store.close()
        raise ConfigError("center.command_key", str(exc), config.source) from None


def serve(config: CenterConfig, start: CenterStart | None = None) -> IngestCounts:
    """Run the center until SIGINT or SIGTERM; the counts of this run.

    Without `start`, opens it first (ConfigError as `open_center`).
    """
    return asyncio.run(_serve(config, start or open_center(config)))


def confirming_key(config: CenterConfig) -> Ed25519PrivateKey | None:
    """The key confirmations are signed with, loaded at start (same 0600
    check as `posgw center cmd`); without one, said loudly."""
    if config.command_key_path is not None:
        return load_command_key(config.command_key_path)
    log.error("no [center] command_key: this center cannot tell gateways what it stored, "
              "so gateways that expect confirmations keep every event and publish it "
              "again; `posgw center command-key DIR` makes one")
    return None


async def _serve(config: CenterConfig, start: CenterStart) -> IngestCounts:
    store, command_key = start.store, start.command_key
    # center.toml's gateways and those registered by command, followed live.
    trust = GatewayTrust(config.gateways, store)
    ingest = CenterIngest(store, trust, config.mqtt,
                          max_clock_skew=timedelta(seconds=config.max_clock_skew_s),
                          max_event_age=timedelta(seconds=config.max_event_age_s),
                          command_key=command_key,
                          quarantine_rows_per_source=config.quarantine_rows_per_source)
    gaps = SeqGapWatcher(store, lambda: trust.verifier.gateway_ids,
                         settle_s=config.seq_gap_settle_s)
    _settle_garbage_collector()
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


def _settle_garbage_collector() -> None:
    """What is loaded at start (modules, compiled schemas, keys) lives as long
    as the process: freeze it out of the collector's scans, and collect the
    young generation less often. Reference counting still frees the
    messages; the collector only has cycles to find, and there are few."""
    gc.collect()
    gc.freeze()
    _young, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


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
