"""`posgw run -c gateway.toml`: the daemon in the foreground (systemd runs it so)."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from posgw.cli.common import fail, gateway_config, start_failure_status
from posgw.gateway.logsetup import LOG_FORMATS, configure_logging

if TYPE_CHECKING:  # the daemon's imports are heavy: only `run` needs them
    from posgw.gateway.daemon import Gateway

#: Young-generation collections every this many allocations (CPython: 700).
#: With the default, full collections ran about every 2.5 s under load and
#: each stopped the event loop for 35-85 ms (measured with gc.callbacks): the
#: terminals' slowest answers. Cycles are still collected, just in fewer runs.
GC_YOUNG_THRESHOLD = 20_000


@click.command()
@click.option("-c", "--config", "config_path", required=True,
              type=click.Path(dir_okay=False, path_type=Path),
              help="The gateway's TOML file (see deploy/gateway.example.toml).")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]))
@click.option("--log-format", type=click.Choice(LOG_FORMATS), default=None,
              help="text (default) or json: one object per line with ts, level, logger, "
                   "msg, extra fields and exc. Overrides the file's [logging] format.")
def run(config_path: Path, log_level: str, log_format: str | None) -> None:
    """Run the gateway daemon until SIGTERM or Ctrl-C.

    \b
    It answers the configured terminals (serial, USB, TCP) and the IP
    terminals that dial its listeners, gets each request authorized (the
    acquirer host, or stand-in up to the floor limit), records every
    transaction durably before answering, and forwards each one to the
    center over MQTT — what the broker cannot take now waits in the outbox.

    \b
    SIGTERM stops it gracefully: no new requests, the ones in flight
    finish, the outbox gets a few seconds to drain. SIGHUP re-reads the
    [risk] rules from the file (window state is kept). Config errors exit 2
    with "file: key: reason". `posgw status -c FILE` shows the state,
    whether the daemon runs or not. With `[metrics] bind` in the file it
    serves Prometheus metrics at http://BIND/metrics.
    """
    from posgw.gateway.daemon import Gateway

    config = gateway_config(config_path, "run")
    # After the file is read: it may name the format. Nothing logs before this.
    configure_logging(log_level, log_format or config.log_format)
    _pin_to_cpus(config.cpus)
    _tune_garbage_collector()
    try:
        asyncio.run(_serve(Gateway(config)))
    except Exception as exc:
        refusal = _start_refused(exc)
        if refusal is not None:  # one line; exit 2 (the operator must act) or 1 (retry)
            fail("run", refusal, start_failure_status(refusal))
        # Logged, so a JSON log holds the crash too (as its `exc`).
        logging.getLogger("posgw").exception("gateway %s stopped by an error",
                                             config.gateway_id)
        sys.exit(1)


def _start_refused(exc: BaseException) -> Exception | None:
    """The ConfigError (or key file error) that refused the start, also when a
    task group wrapped it; None for any other failure."""
    from posgw.gateway.security.keys import KeyFileError
    from posgw.protocols.config_error import ConfigError

    if isinstance(exc, ConfigError | KeyFileError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            if (found := _start_refused(inner)) is not None:
                return found
    return None


def _pin_to_cpus(cpus: tuple[int, ...]) -> None:
    """`[gateway] cpus`: before any thread starts, so every thread inherits it.

    The daemon is bound by the GIL to about one core of work; spread over two
    cores, its threads hand the GIL (and the objects they share) from core to
    core. Pinned to one core, the same run answered 25-35% more requests
    (README, performance), and the other core stays with the broker and the OS.
    """
    if not cpus:
        return
    try:
        os.sched_setaffinity(0, cpus)
    except (OSError, AttributeError) as exc:  # AttributeError: not Linux
        fail("run", f"[gateway] cpus = {list(cpus)}: {exc}")
    logging.getLogger("posgw").info("pinned to CPU %s", ", ".join(map(str, cpus)))


def _tune_garbage_collector() -> None:
    """Everything imported so far (~95,000 objects: SQLAlchemy, pydantic, the
    profiles) lives as long as the process: frozen, no collection walks it
    again. Then young collections run less often (GC_YOUNG_THRESHOLD)."""
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


async def _serve(gateway: Gateway) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    loop.add_signal_handler(signal.SIGHUP, gateway.reload_risk)
    logging.getLogger("posgw").info("gateway %s starting", gateway.config.gateway_id)
    await gateway.run(stop)
