"""`posgw demo --console`: after the traffic, the center console over the
demo's center database, with an admin account whose one-time password is
printed once (its first sign-in leads only to choosing its own), until
Ctrl-C.

The console is the one `posgw center web` serves (center/web/app.py), on
loopback; its log joins the demo's log file.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import uvicorn

from posgw.center.config import CenterConfig, parse_center_config
from posgw.center.db import CenterStore
from posgw.center.web import audit
from posgw.center.web.accounts import add_user, one_time_password
from posgw.center.web.app import create_app
from posgw.center.web.models import create_console_tables
from posgw.sandbox.ports import LOOPBACK, free_port

ADMIN = "admin"
#: How often the start of the server is looked at before its address is printed.
STARTED_POLL_S = 0.05


@dataclass(frozen=True, slots=True)
class Invitation:
    """What the newcomer is told: where the console is, and how to get in."""

    url: str
    name: str
    password: str


def center_database(workdir: Path) -> str:
    """The demo's center database (sandbox/demo/stack.py writes it)."""
    return f"sqlite:///{workdir / 'center.db'}"


def console_config(workdir: Path) -> CenterConfig:
    return parse_center_config({"center": {"database": center_database(workdir)}},
                               "(demo console)", workdir)


def invite_admin(store: CenterStore) -> str:
    """The demo's admin account, its one-time password returned (never stored
    but as its hash, never logged or audited)."""
    password = one_time_password()
    create_console_tables(store.engine)
    add_user(store.engine, ADMIN, "admin", password, must_change=True)
    audit.record(store.engine, "demo", "add account", "ok", object=f"{ADMIN} (admin)")
    return password


def listen_address(listen: str | None) -> tuple[str, int]:
    """`HOST:PORT`, or a free loopback port. ValueError for anything else."""
    if listen is None:
        return LOOPBACK, free_port()
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--console-listen HOST:PORT; got {listen!r}")
    return host.strip("[]"), int(port)


def serve_console(workdir: Path, address: tuple[str, int],
                  announce: Callable[[Invitation], None]) -> None:
    """Serve the console on `address` (`listen_address`) until SIGINT or
    SIGTERM; `announce` is called once it accepts connections. Returns
    after a graceful shutdown."""
    host, port = address
    config = console_config(workdir)
    store = CenterStore(config.database)
    try:
        password = invite_admin(store)
        server = uvicorn.Server(uvicorn.Config(
            create_app(config, store), host=host, port=port, access_log=False,
            log_config=None, server_header=False, lifespan="off"))
        shown = f"[{host}]" if ":" in host else host
        invitation = Invitation(f"http://{shown}:{port}/", ADMIN, password)
        # uvicorn hands back the signal it stopped on: it was the way out.
        previous = signal.signal(signal.SIGTERM, _interrupted)
        try:
            with contextlib.suppress(KeyboardInterrupt):
                asyncio.run(_serve(server, lambda: announce(invitation)))
        finally:
            signal.signal(signal.SIGTERM, previous)
    finally:
        store.close()


def _interrupted(signum: int, frame: FrameType | None) -> None:
    """SIGTERM ends the console as Ctrl-C does: the demo still cleans up."""
    raise KeyboardInterrupt


async def _serve(server: uvicorn.Server, started: Callable[[], None]) -> None:
    serving = asyncio.create_task(server.serve())
    while not server.started and not serving.done():
        await asyncio.wait([serving], timeout=STARTED_POLL_S)
    if server.started:
        started()
    await serving
