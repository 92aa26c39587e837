"""A center that confirms nothing: said loudly, with the reason in words.

Published events wait for the center's confirmation. When some have waited
past `[forward] center_silent_after_s` and the center has confirmed nothing
for as long, the gateway logs a warning (again every threshold while it
lasts), `posgw status` shows it, and a metric is set. The events are safe in
the outbox meanwhile; the warning is for the operator to look at the center
or the broker.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class OutboxSnapshot:
    """What the retained gateway status, metrics and `posgw status` show."""

    pending: int
    published: int
    oldest_unconfirmed_age_s: float | None
    center_silent: bool = False

    def as_payload(self) -> dict[str, object]:
        age = self.oldest_unconfirmed_age_s
        # Whole seconds: signed payloads carry no floats (canonical JSON).
        return {"pending": self.pending, "published_unconfirmed": self.published,
                "oldest_unconfirmed_age_s": None if age is None else int(age),
                "center_silent": self.center_silent}


def silence_text(silent_for_s: float, published: int) -> str:
    minutes = int(silent_for_s // 60)
    span = f"{minutes} min" if minutes else f"{int(silent_for_s)} s"
    return f"center has confirmed nothing for {span}; {published:,} events published and waiting"


class CenterSilence:
    """Decides, each heartbeat, whether the center counts as silent."""

    def __init__(self, after_s: float) -> None:
        self.after_s = after_s
        self.since: datetime | None = None  # when it became silent
        self._next_warning: datetime | None = None

    def check(self, *, silent_for_s: float, published: int, now: datetime) -> bool:
        """`silent_for_s`: since the last confirmation, bounded by the oldest
        waiting event's age (an idle gateway is not a silent center)."""
        if published == 0 or silent_for_s < self.after_s:
            if self.since is not None:
                log.warning("center confirms again (silent since %s)", self.since.isoformat())
            self.since = self._next_warning = None
            return False
        if self.since is None:
            self.since = now - timedelta(seconds=silent_for_s)
        if self._next_warning is None or now >= self._next_warning:
            log.warning("%s (is the center running and subscribed?)",
                        silence_text(silent_for_s, published))
            self._next_warning = now + timedelta(seconds=self.after_s)
        return True
