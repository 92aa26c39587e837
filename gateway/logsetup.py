"""One logging setup for the daemons: a timestamped line per record on stderr."""

from __future__ import annotations

import logging

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format=LOG_FORMAT)
    # Library chatter below warnings is noise in a daemon's log.
    for noisy in ("aiomqtt", "sqlalchemy", "asyncio"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
