"""Hotplug polling and the supervisor that keeps one terminal connected.

`HotplugMonitor` re-runs a scan (default every 2 s: quick enough for an
operator plugging a terminal in, cheap enough to run forever) and reports
what attached and what detached, by identity key.

`TerminalLinkSupervisor.run()` keeps one terminal line up: open → hand the
Transport to the session coroutine → on LinkClosed mark offline → reopen
with the one `Backoff` (cap 30 s) → mark online and run a fresh session.
Nothing else restarts. Its owner (a TaskGroup) runs and cancels it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from types import TracebackType

from posgw.drivers.backoff import Backoff
from posgw.drivers.base import LinkClosed, Transport
from posgw.drivers.discovery import DiscoveredTerminal

log = logging.getLogger(__name__)

DEFAULT_POLL_INTERVAL_S = 2.0

Scan = Callable[[], Awaitable[Sequence[DiscoveredTerminal]]]


@dataclass(frozen=True, slots=True)
class HotplugChange:
    kind: str  # "attached" or "detached"
    terminal: DiscoveredTerminal


class HotplugMonitor:
    """Polls `scan` in an owned task; `await next_change()` gives each change."""

    def __init__(self, scan: Scan, *, interval: float = DEFAULT_POLL_INTERVAL_S) -> None:
        self._scan, self._interval = scan, interval
        self.present: dict[str, DiscoveredTerminal] = {}
        self._changes: asyncio.Queue[HotplugChange] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> HotplugMonitor:
        self._task = asyncio.get_running_loop().create_task(self._poll(), name="hotplug-poll")
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    async def next_change(self) -> HotplugChange:
        return await self._changes.get()

    async def _poll(self) -> None:
        while True:
            try:
                self._compare({t.identity.key: t for t in await self._scan()})
            except Exception:  # a failed scan must not stop hotplug: log, retry
                log.exception("hotplug scan failed")
            await asyncio.sleep(self._interval)

    def _compare(self, now: dict[str, DiscoveredTerminal]) -> None:
        for key in now.keys() - self.present.keys():
            self._changes.put_nowait(HotplugChange("attached", now[key]))
        for key in self.present.keys() - now.keys():
            self._changes.put_nowait(HotplugChange("detached", self.present[key]))
        self.present = now


class TerminalLinkSupervisor:
    """Keeps one terminal connected; see the module docstring."""

    def __init__(self, name: str, open_link: Callable[[], Awaitable[Transport]],
                 session: Callable[[Transport], Awaitable[None]], *,
                 on_online: Callable[[str], None] | None = None,
                 on_offline: Callable[[str], None] | None = None,
                 backoff: Backoff | None = None) -> None:
        self.name = name
        self._open, self._session = open_link, session
        self._on_online, self._on_offline = on_online, on_offline
        self._backoff = backoff or Backoff()
        self.online = False

    async def run(self) -> None:
        """Forever: connect, run the session, reconnect. Cancel to stop."""
        while True:
            try:
                transport = await self._open()
            except LinkClosed as exc:
                log.info("%s: not available (%s)", self.name, exc)
                await asyncio.sleep(self._backoff.next_delay())
                continue
            self._backoff.reset()
            await self._serve(transport)
            await asyncio.sleep(self._backoff.next_delay())

    async def _serve(self, transport: Transport) -> None:
        self._mark(True)
        try:
            await self._session(transport)
        except LinkClosed as exc:
            log.info("%s: link lost (%s)", self.name, exc)
        finally:
            await transport.close()
            self._mark(False)

    def _mark(self, online: bool) -> None:
        self.online = online
        callback = self._on_online if online else self._on_offline
        if callback is not None:
            callback(self.name)
