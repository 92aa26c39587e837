"""One logging setup for the daemons, on stderr: a timestamped text line per
record (the default), or one JSON object per line for log collectors.

A JSON line carries `ts` (UTC, ISO 8601, milliseconds), `level`, `logger`,
`msg` (the formatted message: exactly what the text line says, so the same
care about card data applies), every field the call passed as `extra=`
(`terminal`, `stan`, ...), and `exc` with the traceback when there is one.

Every line logged while a terminal session handles its line (the session,
its channel, the pipeline for its requests) names the peer: "[peer
tcp:10.1.2.3:40512]" is appended unless the message already says it, so a
hostile frame, a refused terminal or a closed slowloris can be traced to a
device on the LAN. Sessions set `SESSION_PEER`; each runs in its own task,
so the value is the session's own.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LOG_FORMATS = ("text", "json")
#: What every LogRecord has; anything else on a record came in as `extra=`.
_RECORD_ATTRIBUTES = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


#: The line a session serves ("tcp:10.1.2.3:40512", "serial:/dev/ttyUSB0").
SESSION_PEER: ContextVar[str | None] = ContextVar("posgw_session_peer", default=None)


class SessionPeerFilter(logging.Filter):
    """Appends the session's peer to a record logged inside a session."""

    def filter(self, record: logging.LogRecord) -> bool:
        peer = SESSION_PEER.get()
        if peer is None:
            return True
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a bad format: the handler reports it as usual
            return True
        if peer not in message:
            record.msg, record.args = f"{message} [peer {peer}]", None
            record.peer = peer
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (newlines inside are escaped)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRIBUTES and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        # default=str: an extra that JSON cannot hold (a datetime, an enum) is
        # still logged, as its text, instead of losing the whole record.
        return json.dumps(entry, default=str, ensure_ascii=False)


class ThrottledLog:
    """At most one line per `every_s` for each key; the lines held back in
    between are counted and told with the next one. For what a stranger can
    make happen thousands of times a second (a flood of junk commands): the
    log says it happens and how often, and does not grow with it."""

    def __init__(self, logger: logging.Logger, every_s: float,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._logger = logger
        self._every_s = every_s
        self._monotonic = monotonic
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def warning(self, key: str, message: str, *args: object) -> None:
        now = self._monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self._every_s:
            self._held[key] = self._held.get(key, 0) + 1
            return
        self._last[key] = now
        held = self._held.pop(key, 0)
        if held and last is not None:
            message += f" (and {held} more like it in the last {now - last:.0f} s)"
        self._logger.warning(message, *args)


def configure_logging(level: str, log_format: str = "text") -> None:
    handler = logging.StreamHandler()
    handler.addFilter(SessionPeerFilter())
    handler.setFormatter(JsonFormatter() if log_format == "json"
                         else logging.Formatter(LOG_FORMAT))
    logging.basicConfig(level=level.upper(), handlers=[handler])
    logging.captureWarnings(True)  # Python warnings in the same format, not raw stderr
    # Library chatter below warnings is noise in a daemon's log.
    for noisy in ("aiomqtt", "sqlalchemy", "asyncio"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
