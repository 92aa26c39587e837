"""The events the committer has just written, kept for the forwarder.

Reading each batch back from the outbox table cost a query and a thread
hand-off per commit: at 200 tx/s, more CPU than publishing the events. The
table stays the truth; these are a shortcut the forwarder takes only while
they continue exactly at its cursor (`after_seq + 1`). Anything else — a new
connection, rows from before this process, an overflow of this bounded
queue — is a gap, and the forwarder reads the table until its cursor
catches up with what is kept here.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable

from posgw.gateway.store.store import PendingEvent

#: Events kept at most; older ones are dropped (they stay in the table).
DEFAULT_CAPACITY = 2048


class FreshEvents:
    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self._events: collections.deque[PendingEvent] = collections.deque(maxlen=capacity)

    def __len__(self) -> int:
        return len(self._events)

    def add(self, events: Iterable[PendingEvent]) -> None:
        """Durably committed events, in seq order (GroupCommitter's on_commit)."""
        self._events.extend(events)

    def take(self, after_seq: int, limit: int) -> list[PendingEvent] | None:
        """Up to `limit` sealed events continuing right after `after_seq`:
        [] when none is kept, None when what is kept does not continue there
        (read the table instead)."""
        events = self._events
        while events and events[0].seq <= after_seq:
            events.popleft()  # published from the table meanwhile
        taken: list[PendingEvent] = []
        while (events and len(taken) < limit and events[0].wire is not None
               and events[0].seq == after_seq + 1 + len(taken)):
            taken.append(events.popleft())
        if not taken and events:
            return None
        return taken
