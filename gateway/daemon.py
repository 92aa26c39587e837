"""`posgw run`: the gateway daemon, assembled from one GatewayConfig.

Start-up order: open the store (schema check), load or create the keys,
warm the risk windows and the retransmit cache from the ledger, connect
upstream, then open the terminal lines. Shutdown (SIGTERM) runs the other
way: stop taking requests, let the ones in flight finish and commit, give
the forwarder a moment to empty the outbox (what it cannot deliver stays
in the table for the next start), say "offline".
"""

from __future__ import annotations

import asyncio
import logging
import os
import resource
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from datetime import datetime, timedelta
from typing import Any

from posgw.drivers.base import Transport
from posgw.drivers.clock import SYSTEM_CLOCK, Clock
from posgw.drivers.hotplug import TerminalLinkSupervisor
from posgw.drivers.tcp_link import TcpServer
from posgw.drivers.usb_link import backend_from_option
from posgw.gateway.advices import AdviceSender
from posgw.gateway.authorize import Authorizer, Iso8583Upstream, StandInAuthorizer
from posgw.gateway.cases import CaseService
from posgw.gateway.commands import CommandHandler, describe_rules
from posgw.gateway.config import GatewayConfig, ListenerConfig, TerminalConfig, load_config
from posgw.gateway.evidence import EvidenceStore
from posgw.gateway.forward import OutboxForwarder
from posgw.gateway.forward.confirmations import ConfirmationReader
from posgw.gateway.forward.events import new_event_id, outbox_row
from posgw.gateway.forward.silence import CenterSilence, OutboxSnapshot
from posgw.gateway.housekeeping import StoreHousekeeping
from posgw.gateway.identity import GatewayIdentity
from posgw.gateway.links import open_terminal_link
from posgw.gateway.metrics import GatewayMetrics, serve_metrics
from posgw.gateway.pipeline import Pipeline, RecentResponses
from posgw.gateway.pipeline.warmup import rrn_source, warm_up
from posgw.gateway.profiles import load_profile
from posgw.gateway.risk import RiskEngine
from posgw.gateway.security.command_auth import CommandAuthenticator, load_center_public_key
from posgw.gateway.security.command_gate import CommandGate, CommandWindow
from posgw.gateway.security.keys import (
    GatewayKeys,
)
from posgw.gateway.security.mac_check import TerminalMacs
from posgw.gateway.security.vault import open_vault
from posgw.gateway.sessions import TerminalSession
from posgw.gateway.startup import (
    bind_refused,
    check_mqtt_tls,
    keys_folder,
    open_keys,
    open_store,
)
from posgw.gateway.store import GroupCommitter, OutboxStats, Store
from posgw.gateway.store.reports import terminal_statement
from posgw.gateway.store.rows import TableRow
from posgw.gateway.terminals import DECOMMISSIONED, TerminalLine, TerminalRegistry
from posgw.protocols.config_error import ConfigError
from posgw.protocols.contract import terminal_status, terminal_status_topic

log = logging.getLogger(__name__)

HEARTBEAT_S = 2.0
DRAIN_TIMEOUT_S = 10.0  # requests in flight at SIGTERM get this long to finish
FLUSH_TIMEOUT_S = 5.0  # the outbox gets this long to reach the broker at shutdown
#: Descriptors the daemon uses besides its listeners' sockets: the database and
#: its WAL, the broker, terminal devices, the metrics endpoint, with room.
DAEMON_DESCRIPTORS = 256


class Gateway:
    """`await Gateway(config).run(stop)` serves until `stop` is set."""

    def __init__(self, config: GatewayConfig, *, clock: Clock = SYSTEM_CLOCK,
                 usb_backend: Any = None) -> None:
        """`usb_backend`: a pyusb backend object for every USB terminal (the demo's
        emulated device); by default the config's `usb_backend` option, else libusb."""
        self.config = config
        self.clock = clock
        self._usb_backend = usb_backend
        self.ready = asyncio.Event()
        self.listener_ports: list[int] = []
        self.pipeline: Pipeline | None = None
        self.forwarder: OutboxForwarder | None = None
        self.upstream: Iso8583Upstream | None = None  # in iso8583 mode
        self.registry = TerminalRegistry(clock)
        self.risk: RiskEngine | None = None
        #: Terminal MAC keys (terminal-mac.toml, read in run) and their `failures` counter.
        self.macs = TerminalMacs(config.keys_dir, clock)
        self._broker_connected: bool | None = None
        self._silence = CenterSilence(config.forward.center_silent_after_s)
        self._silent_since: datetime | None = None
        self.metrics = GatewayMetrics(gateway_id=config.gateway_id, branch_id=config.branch_id)
        self.metrics.unsigned_commands_obeyed = config.center_public_key is None
        self.metrics_port: int | None = None  # bound port of [metrics] bind, once ready

    async def run(self, stop: asyncio.Event) -> None:
        """Serves until `stop` is set. What stops the start (a database it
        cannot open, a keys folder others may enter, a port in use) is a
        ConfigError naming the key (gateway/startup.py), raised before the
        forwarder and the terminal lines start."""
        check_mqtt_tls(self.config)
        store = await asyncio.to_thread(open_store, self.config)
        try:
            await self._run(store, stop)
        finally:
            await asyncio.to_thread(self._goodbye, store)
            store.close()

    async def _run(self, store: Store, stop: asyncio.Event) -> None:
        config = self.config
        keys = await asyncio.to_thread(open_keys, config)
        with keys_folder(config):
            if await asyncio.to_thread(self.macs.load):
                log.info("terminal MAC keys loaded from %s", config.keys_dir)
            vault = await asyncio.to_thread(open_vault, config.keys_dir, store)
        risk = self.risk = RiskEngine(config.risk)
        recent = RecentResponses()
        self.registry.load(await asyncio.to_thread(store.terminals))
        await asyncio.to_thread(warm_up, store, risk, recent, self.clock)
        rrns = await asyncio.to_thread(rrn_source, store, self.clock)
        forwarder = self.forwarder = OutboxForwarder(
            store, config.mqtt, keys.signer, self.clock, branch_id=config.branch_id,
            gateway_id=config.gateway_id, confirmations=_confirmations_from(config),
            confirm_timeout_s=config.forward.confirm_timeout_s)
        async with AsyncExitStack() as stack:
            committer = await stack.enter_async_context(GroupCommitter(
                store, outbox_cap=config.outbox_cap, on_commit=forwarder.wake,
                seal=forwarder.seal))
            authorizer, advices = await self._authorizer(stack, store)
            identity = GatewayIdentity(config.branch_id, config.gateway_id,
                                       config.mqtt.topic_prefix)
            cases = CaseService(store, committer, identity, self.clock, vault=vault,
                                evidence=EvidenceStore(config.cases.evidence_dir,
                                                       max_bytes=config.cases.evidence_max_bytes),
                                metrics=self.metrics)
            forwarder.on_command = CommandHandler(
                self.registry, committer, identity, self.clock, cases,
                gate=_command_gate(config, keys), store=store, metrics=self.metrics,
                reload_risk=self.reload_risk, unsigned=config.center_public_key is None).handle
            self.pipeline = Pipeline(
                store=store, committer=committer, authorizer=authorizer, risk=risk,
                tokenizer=keys.tokenizer, registry=self.registry, clock=self.clock,
                identity=identity, recent=recent, metrics=self.metrics, vault=vault,
                case_policy=config.cases.policy, rrns=rrns)
            self.metrics.watch(outbox=store, links=self.registry, broker=forwarder,
                               clock=self.clock, upstream=self.upstream, pipeline=self.pipeline)
            self.metrics_port = await self._serve_metrics(stack)
            # Bound now, outside the task groups: a port in use stops the start
            # with its key named, before the forwarder says "online".
            lines = await stack.enter_async_context(AsyncExitStack())
            await self._open_listeners(lines)
            async with asyncio.TaskGroup() as services:
                background = [services.create_task(forwarder.run(), name="forwarder"),
                              services.create_task(self._heartbeat(store, committer),
                                                   name="heartbeat"),
                              services.create_task(cases.housekeeping(),
                                                   name="case-housekeeping"),
                              services.create_task(self._housekeeping(store).run(),
                                                   name="store-housekeeping")]
                if advices is not None:
                    background.append(services.create_task(advices.run(), name="advices"))
                await self._serve_lines(lines, stop)
                await self._flush(store)
                for task in background:
                    task.cancel()
            await asyncio.to_thread(self._beat, store, committer)

    def _housekeeping(self, store: Store) -> StoreHousekeeping:
        commands = self.config.commands
        return StoreHousekeeping(
            store, self.clock, self.metrics,
            keep_delivered=timedelta(days=self.config.keep_delivered_days),
            command_window=timedelta(seconds=commands.max_age_s + commands.max_ahead_s))

    async def _authorizer(self, stack: AsyncExitStack,
                          store: Store) -> tuple[Authorizer, AdviceSender | None]:
        upstream = self.config.upstream
        if upstream.mode == "standin" or upstream.host is None:
            return StandInAuthorizer(upstream.floor_limit, upstream.refund_limits), None
        host, _, port = upstream.host.rpartition(":")
        client = self.upstream = await stack.enter_async_context(Iso8583Upstream(
            host, int(port), load_profile(upstream.profile), timeout_s=upstream.timeout_s))
        return client, AdviceSender(store, client, self.clock)

    # -- terminal lines ---------------------------------------------------------

    async def _serve_metrics(self, stack: AsyncExitStack) -> int | None:
        try:
            return await stack.enter_async_context(
                serve_metrics(self.metrics, self.config.metrics_bind))
        except OSError as exc:
            raise bind_refused(self.config, "metrics.bind", self.config.metrics_bind or "",
                               exc) from None

    async def _open_listeners(self, lines: AsyncExitStack) -> None:
        warn_if_descriptors_short(self.config)
        for index, listener in enumerate(self.config.listeners):
            line = self._listener_line(listener)
            host, _, port = listener.bind.rpartition(":")
            try:
                server = await lines.enter_async_context(
                    TcpServer(host, int(port), self._session_for(line), listener.sessions))
            except OSError as exc:
                raise bind_refused(self.config, f"listeners[{index}].bind", listener.bind,
                                   exc) from None
            self.listener_ports.append(server.port)
            log.info("listening for %s terminals on %s:%d", line.profile.name, host,
                     server.port)

    async def _serve_lines(self, lines: AsyncExitStack, stop: asyncio.Event) -> None:
        """The listeners are open (`lines`); start the configured terminals,
        serve until `stop`, then close every line."""
        async with asyncio.TaskGroup() as group:
            supervised = [group.create_task(self._supervise(terminal).run(),
                                            name=f"terminal-{terminal.id}")
                          for terminal in self.config.terminals]
            self.ready.set()
            await stop.wait()
            log.info("stopping: no new requests; finishing %d in flight",
                     self._pipeline().in_flight)
            await self._drain()
            for task in supervised:
                task.cancel()
            await lines.aclose()  # listeners close their sockets: sessions end

    def _listener_line(self, listener: ListenerConfig) -> TerminalLine:
        line = TerminalLine(load_profile(listener.profile), "tcp",
                            allow=frozenset(listener.allow),
                            register_unknown=listener.register_unknown,
                            max_terminals=listener.max_terminals,
                            reserved=frozenset(t.id for t in self.config.terminals)
                            - frozenset(listener.allow),
                            name=listener.bind, sessions=listener.sessions)
        if line.register_unknown:
            log.warning("listener %s registers unknown terminal ids on first contact "
                        "(register_unknown = true), up to %d; list them in allow instead",
                        listener.bind, listener.max_terminals)
        return line

    def _session_for(self, line: TerminalLine) -> Callable[[Transport], Awaitable[None]]:
        async def serve(transport: Transport) -> None:
            await TerminalSession(self._pipeline(), line, self.registry,
                                  macs=self.macs).serve(transport)

        return serve

    def _supervise(self, terminal: TerminalConfig) -> TerminalLinkSupervisor:
        profile = load_profile(terminal.profile)
        line = TerminalLine(profile, terminal.driver, terminal.id, terminal.merchant_id)
        return TerminalLinkSupervisor(
            terminal.id, lambda: open_terminal_link(terminal, profile, self._usb()),
            self._session_for(line),
            on_online=lambda _name: self.registry.seen(terminal.id, line),
            on_offline=lambda _name: self.registry.line_down({terminal.id}))

    def reload_risk(self) -> tuple[bool, str]:
        """SIGHUP and the center's `reload_risk`: re-read the config file's `[risk]`
        rules; window state is kept. Returns (reloaded, what happened).

        A file with a mistake changes nothing (logged with file, key, reason).
        """
        if self.risk is None or not self.config.source:
            return False, "the daemon was not started from a configuration file"
        try:
            settings = load_config(self.config.source).risk
        except ConfigError as exc:
            log.error("risk rules not reloaded: %s", exc)
            return False, f"risk rules not reloaded: {exc}"
        self.risk.reconfigure(settings)
        log.warning("risk rules reloaded from %s", self.config.source)
        return True, f"risk rules reloaded: {describe_rules(settings)}"

    def _usb(self) -> Any:
        if self._usb_backend is None:
            self._usb_backend = backend_from_option(self.config.usb_backend)
        return self._usb_backend

    async def _drain(self) -> None:
        deadline = self.clock.monotonic() + DRAIN_TIMEOUT_S
        while self._pipeline().in_flight and self.clock.monotonic() < deadline:
            await asyncio.sleep(0.05)  # polling a counter with a deadline

    async def _flush(self, store: Store) -> None:
        forwarder = self.forwarder
        if forwarder is None or not forwarder.connected.is_set():
            return
        deadline = self.clock.monotonic() + FLUSH_TIMEOUT_S
        while self.clock.monotonic() < deadline:
            stats = await asyncio.to_thread(store.outbox_stats)
            if stats.depth == 0:
                return
            forwarder.wake()
            await asyncio.sleep(0.05)
        log.warning("shutdown: undelivered events stay in the outbox for the next start")

    def _pipeline(self) -> Pipeline:
        assert self.pipeline is not None, "the pipeline exists once run() has started"
        return self.pipeline

    # -- heartbeat: state for `posgw status`, retained terminal status -------------

    async def _heartbeat(self, store: Store, committer: GroupCommitter) -> None:
        await asyncio.to_thread(store.update_runtime, gateway_id=self.config.gateway_id,
                                pid=os.getpid(), started_at=self.clock.utc_now(),
                                stopped_at=None, broker=f"{self.config.mqtt.host}:"
                                f"{self.config.mqtt.port}")
        while True:
            for terminal_id, state, profile in self.registry.take_transitions():
                statement = None
                if state == DECOMMISSIONED:
                    statement = await asyncio.to_thread(terminal_statement, store, terminal_id)
                    log.warning("final statement of %s: %s", terminal_id, statement)
                await committer.commit(None, self._status_row(terminal_id, state, profile,
                                                              statement))
            await asyncio.to_thread(self._beat, store, committer)
            await asyncio.sleep(HEARTBEAT_S)

    def _status_row(self, terminal_id: str, state: str, profile: str,
                    statement: dict[str, Any] | None = None) -> TableRow:
        config = self.config
        payload = terminal_status(terminal_id, state, profile=profile or None,
                                  event_id=new_event_id(), branch_id=config.branch_id,
                                  gateway_id=config.gateway_id, occurred_at=self.clock.utc_now())
        if statement is not None:  # retired: the final statement goes with it
            payload["statement"] = statement
        topic = terminal_status_topic(config.mqtt.topic_prefix, config.branch_id, terminal_id)
        return outbox_row(payload, topic=topic, clock=self.clock, terminal_id=terminal_id,
                          retain=True)

    def _beat(self, store: Store, committer: GroupCommitter) -> None:
        for terminal_id in self.registry.draining():
            if store.undelivered_for(terminal_id) == 0:  # everything it did has arrived
                log.warning("terminal %s decommissioned", terminal_id)
                self.registry.decommissioned(terminal_id)
        store.save_terminals(self.registry.take_changes())
        now = self.clock.utc_now()
        values: dict[str, object] = {"heartbeat_at": now}
        connected = self.forwarder is not None and self.forwarder.connected.is_set()
        if connected != self._broker_connected:
            self._broker_connected = connected
            values.update(broker_connected=connected, broker_changed_at=now)
        stats = store.outbox_stats()
        silent = self._note_outbox(stats, now)
        if silent != self._silent_since:
            self._silent_since = values["center_silent_since"] = silent
        store.update_runtime(**values)
        committer.note_outbox_depth(stats.depth)

    def _note_outbox(self, stats: OutboxStats, now: datetime) -> datetime | None:
        """The outbox counts for the retained status and metrics; when the
        center has gone silent, since when (else None)."""
        forwarder = self.forwarder
        if forwarder is None:
            return None
        age = stats.oldest_age_s(now)
        silent = forwarder.confirming and self._silence.check(
            silent_for_s=min(forwarder.center_silent_for(), age or 0.0),
            published=stats.published, now=now)
        forwarder.outbox = OutboxSnapshot(stats.pending, stats.published, age, silent)
        return self._silence.since if silent else None

    def _goodbye(self, store: Store) -> None:
        self.registry.line_down({record.terminal_id for record in store.terminals()})
        store.save_terminals(self.registry.take_changes())
        store.update_runtime(stopped_at=self.clock.utc_now(), broker_connected=False,
                             broker_changed_at=self.clock.utc_now())


def warn_if_descriptors_short(config: GatewayConfig) -> int:
    """Warn when the listeners' connection caps do not fit under RLIMIT_NOFILE:
    a socket flood would then meet EMFILE (and starve the database and broker
    links) before the caps. Returns the descriptors the config may need."""
    needed = DAEMON_DESCRIPTORS + sum(listener.sessions.max_connections
                                      for listener in config.listeners)
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        log.warning("the descriptor limit (%d) is below what the listeners' max_connections "
                    "and the daemon may need (%d): raise LimitNOFILE (deploy/posgw.service) "
                    "or lower max_connections", soft, needed)
    return needed


def _confirmations_from(config: GatewayConfig) -> ConfirmationReader | None:
    """Confirmations are believed only when signed with `[keys] center_public_key`;
    without one the broker's PUBACK marks an event done, as before."""
    if config.center_public_key is None:
        log.warning("NO [keys] center_public_key: the center's confirmations cannot be "
                    "verified, so an event counts as delivered at the broker's PUBACK. A "
                    "broker crash (or a shared subscription with no subscriber) can then "
                    "lose events the broker acknowledged. Set center_public_key.")
        return None
    log.info("events are done only once the center confirms them (confirmations signed "
             "with %s)", config.center_public_key)
    authenticator = CommandAuthenticator([load_center_public_key(config.center_public_key)],
                                         what="confirmation")
    return ConfirmationReader(authenticator, branch_id=config.branch_id,
                              gateway_id=config.gateway_id)


def _command_gate(config: GatewayConfig, keys: GatewayKeys) -> CommandGate:
    """Signed commands only, with `[keys] center_public_key`: the center's key,
    and this gateway's own (`posgw cases` signs with it). Without it the
    config said `[commands] insecure_obey_unsigned` (it does not load otherwise)."""
    window = CommandWindow(timedelta(seconds=config.commands.max_age_s),
                           timedelta(seconds=config.commands.max_ahead_s))
    if config.center_public_key is None and not config.commands.insecure_obey_unsigned:
        # parse_config refuses such a config; this guards one built in code.
        raise ConfigError("keys.center_public_key", "required (or [commands] "
                          "insecure_obey_unsigned = true)", config.source)
    if config.center_public_key is None:
        log.warning("INSECURE: commands on cmd are obeyed UNSIGNED ([commands] "
                    "insecure_obey_unsigned = true): anyone who can publish on the broker "
                    "can release or return frozen funds and decommission terminals. Set "
                    "[keys] center_public_key (SECURITY.md, Commands)")
        return CommandGate(config.branch_id, window, None)
    log.info("commands must be signed with %s or this gateway's key",
             config.center_public_key)
    return CommandGate(config.branch_id, window, CommandAuthenticator(
        [load_center_public_key(config.center_public_key), keys.signer.public_key]))
