"""Which terminals the gateway knows, and when each was last heard from.

A configured serial/USB/TCP terminal is known from the start; an IP
terminal dialing a listener is known by its field 41: the listener serves
the ids in its allow list, and registers others on first contact only when
its config opts in (`register_unknown`), at most `max_terminals` of them
(counting those an earlier run registered), so a LAN device sending made-up
ids cannot grow the terminal table, the metric series or the retained
status messages without bound. Last-seen times
change on every request, so they live here in memory and reach the
database with the daemon's heartbeat, not with each transaction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from posgw.drivers.clock import Clock
from posgw.drivers.session_limits import SessionLimits, ThrottledLog
from posgw.gateway.store.models import TerminalRecord
from posgw.protocols.profile import Profile

log = logging.getLogger(__name__)

ONLINE, OFFLINE = "online", "offline"
#: Decommissioning: a DRAINING terminal may still undo its own sales (reversal,
#: refund, void) but sells nothing new; once none of its events waits in the
#: outbox it is DECOMMISSIONED and refused outright.
DRAINING, DECOMMISSIONED = "draining", "decommissioned"
RETIRING = frozenset({DRAINING, DECOMMISSIONED})


@dataclass(frozen=True, slots=True)
class TerminalLine:
    """Where requests arrive from: one configured terminal, or one listener."""

    profile: Profile
    driver: str  # serial | usb | tcp
    terminal_id: str | None = None  # None on a listener: field 41 names the terminal
    merchant_id: str = ""
    allow: frozenset[str] = frozenset()  # the ids a listener serves
    register_unknown: bool = False  # a listener registers other ids on first contact...
    max_terminals: int = 0  # ...up to this many
    #: Ids configured on lines of their own (serial, USB): never served by a listener.
    reserved: frozenset[str] = frozenset()
    name: str = ""  # a listener's bind address: its registrations and log lines
    sessions: SessionLimits | None = None  # a listener's TCP session bounds


#: One "registration cap reached" line per this many seconds, with a count.
REFUSAL_LOG_INTERVAL_S = 10.0


class TerminalRegistry:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._records: dict[str, TerminalRecord] = {}
        self._registered: dict[str, set[str]] = {}  # listener name -> ids it registered
        self._cap_reached = ThrottledLog(log, REFUSAL_LOG_INTERVAL_S, clock)
        self._dirty: set[str] = set()
        self._transitions: list[tuple[str, str, str]] = []  # (terminal, new state, profile)

    def load(self, records: list[TerminalRecord]) -> None:
        for record in records:
            if record.state == ONLINE:  # the previous run ended without saying so
                self._set_state(record, OFFLINE)
            self._records[record.terminal_id] = record

    def admit(self, terminal_id: str, line: TerminalLine) -> bool:
        """May `terminal_id` send requests over `line`? A configured line serves
        its terminal; a listener its allow list, then (opted in) the ids it
        registered, and new ones while fewer than `max_terminals` are."""
        if line.terminal_id is not None or terminal_id in line.allow:
            return True
        if not line.register_unknown or terminal_id in line.reserved:
            return False
        registered = self._registrations(line)
        if terminal_id in registered:
            return True
        if len(registered) >= line.max_terminals:
            self._cap_reached.warning(
                "listener %s has registered max_terminals = %d terminals: new terminal %s "
                "refused (list the terminals in its allow list)", line.name,
                line.max_terminals, terminal_id)
            return False
        registered.add(terminal_id)
        return True

    def serves(self, terminal_id: str, line: TerminalLine) -> bool:
        """Has `line` admitted `terminal_id` (no side effect, unlike `admit`)?"""
        return (line.terminal_id is not None or terminal_id in line.allow
                or terminal_id in self._registered.get(line.name, ()))

    def _registrations(self, line: TerminalLine) -> set[str]:
        """The ids `line` registered on first contact, this run or before (rows
        with the listener's driver and profile, outside its allow list)."""
        registered = self._registered.get(line.name)
        if registered is None:
            registered = self._registered[line.name] = {
                tid for tid, record in self._records.items()
                if record.driver == line.driver and record.profile == line.profile.name
                and tid not in line.allow and tid not in line.reserved}
        return registered

    def state(self, terminal_id: str) -> str | None:
        record = self._records.get(terminal_id)
        return record.state if record is not None else None

    def seen(self, terminal_id: str, line: TerminalLine) -> None:
        """A request arrived from `terminal_id` over `line`: it is online now."""
        record = self._records.get(terminal_id)
        now = self._clock.utc_now()
        if record is None:
            log.info("terminal %s registered on first contact (%s, %s)", terminal_id,
                     line.driver, line.profile.name)
            record = self._records[terminal_id] = TerminalRecord(
                terminal_id=terminal_id, merchant_id=line.merchant_id, profile=line.profile.name,
                driver=line.driver, registered_at=now)
        if record.state not in RETIRING and record.state != ONLINE:
            self._set_state(record, ONLINE)
        record.last_seen_at = now
        self._dirty.add(terminal_id)

    def line_down(self, terminal_ids: set[str]) -> None:
        for terminal_id in terminal_ids:
            record = self._records.get(terminal_id)
            if record is not None and record.state == ONLINE:
                self._set_state(record, OFFLINE)

    def links(self) -> list[tuple[str, str, str]]:
        """(terminal id, driver, state) of every known terminal, for the metrics
        scrape: safe from its thread, as list() copies the dict without yielding
        the GIL and each field read is one attribute."""
        return [(r.terminal_id, r.driver, r.state) for r in list(self._records.values())]

    def batch_opened_at(self, terminal_id: str) -> datetime | None:
        record = self._records.get(terminal_id)
        return record.batch_opened_at if record is not None else None

    def open_batch(self, terminal_id: str, at: datetime) -> None:
        """A settlement closed the terminal's batch: the next one starts `at`."""
        record = self._records.get(terminal_id)
        if record is not None:
            record.batch_opened_at = at
            self._dirty.add(terminal_id)

    def drain(self, terminal_id: str) -> bool:
        """Start decommissioning `terminal_id`; False when it is unknown."""
        record = self._records.get(terminal_id)
        if record is None:
            return False
        if record.state not in RETIRING:
            self._set_state(record, DRAINING)
        return True

    def draining(self) -> list[str]:
        return [tid for tid, record in self._records.items() if record.state == DRAINING]

    def decommissioned(self, terminal_id: str) -> None:
        record = self._records.get(terminal_id)
        if record is not None and record.state == DRAINING:
            self._set_state(record, DECOMMISSIONED)

    def _set_state(self, record: TerminalRecord, state: str) -> None:
        record.state = state
        self._dirty.add(record.terminal_id)
        self._transitions.append((record.terminal_id, state, record.profile))

    def take_transitions(self) -> list[tuple[str, str, str]]:
        """State changes since the last call, oldest first (for status events)."""
        transitions, self._transitions = self._transitions, []
        return transitions

    def take_changes(self) -> list[TerminalRecord]:
        """Copies of the rows changed since the last call, for the database."""
        changed = [TerminalRecord(**self._records[tid].model_dump()) for tid in sorted(self._dirty)]
        self._dirty.clear()
        return changed
