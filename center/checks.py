"""Checks of a verified payload against where and when it arrived.

`check_topic`: a payload arrives on its own branch's and terminal's topic
(a gateway's broker ACL allows it only its branch; the center checks again:
issue 17, finding 6). `check_time`: its `occurred_at` lies within the
configured tolerance. Each raises BadPayload with the reason; reasons quote
nothing of the payload or topic but identifier-like levels.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from posgw.center.verify import BadPayload, QuarantineKind

#: Of an untrusted topic, this much goes into a log line (escaped).
SHOWN_TOPIC_CHARS = 128


def check_topic(topic: str, payload: dict[str, Any]) -> None:
    """The topic's branch (and, for per-terminal topics, terminal) levels are
    the payload's own. Read from the end: the prefix is the subscription's,
    and the broker delivers nothing else."""
    levels = topic.split("/")
    if len(levels) < 3:
        raise BadPayload("topic is not {prefix}/{branch}/...", QuarantineKind.WRONG_BRANCH)
    if levels[-1] == "cases":  # {prefix}/{branch}/cases
        branch, terminal = levels[-2], None
    elif levels[-2:] in (["cmd", "reply"], ["gateway", "status"]):
        branch, terminal = levels[-3], None
    else:  # {prefix}/{branch}/{terminal}/tx, reconciliation or status
        branch, terminal = levels[-3], levels[-2]
    if branch != payload.get("branch_id") or (
            terminal is not None and terminal != payload.get("terminal_id")):
        where = f"branch {_shown_level(branch)}"
        if terminal is not None:
            where += f" terminal {_shown_level(terminal)}"
        raise BadPayload(f"published on {where}, not its own branch and terminal",
                         QuarantineKind.WRONG_BRANCH)


def check_time(occurred_at: str, now: datetime, max_clock_skew: timedelta,
               max_event_age: timedelta) -> None:
    """Reject times from the future (beyond clock skew) or older than the
    outbox could plausibly have held an event: a replayed or forged
    payload, or a gateway whose clock is wrong."""
    try:
        moment = datetime.fromisoformat(occurred_at.replace("Z", "+00:00"))
    except ValueError:
        raise BadPayload("occurred_at is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise BadPayload("occurred_at has no time zone")
    if moment > now + max_clock_skew:
        raise BadPayload(f"occurred_at is more than {span_text(max_clock_skew)} in the "
                         "future (max_clock_skew_s)", QuarantineKind.FUTURE)
    if moment < now - max_event_age:
        raise BadPayload(f"occurred_at is older than {span_text(max_event_age)} "
                         "(max_event_age_s)", QuarantineKind.STALE)


def shown_topic(topic: str) -> str:
    """An untrusted topic for a log line: bounded, control characters escaped."""
    shown = repr(topic[:SHOWN_TOPIC_CHARS])
    return shown + ("..." if len(topic) > SHOWN_TOPIC_CHARS else "")


def span_text(span: timedelta) -> str:
    """A tolerance as an operator wrote it: 30 days, 5 min, 90 s."""
    seconds = int(span.total_seconds())
    if seconds % 86_400 == 0:
        days = seconds // 86_400
        return f"{days} day{'' if days == 1 else 's'}"
    for unit, size in (("h", 3600), ("min", 60)):
        if seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def _shown_level(level: str) -> str:
    """A topic level quoted in a reason when it looks like an identifier
    (topics are chosen by whoever publishes)."""
    if 0 < len(level) <= 32 and all(c.isascii() and (c.isalnum() or c in "-_.") for c in level):
        return level
    return "(not an identifier)"
