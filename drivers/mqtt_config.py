"""`MqttConfig`: the `[mqtt]` table of gateway.toml and center.toml, as a value.

Apart from drivers/mqtt.py (the client factory) so that reading a
configuration does not import aiomqtt, paho and ssl: the operator commands
(`posgw center query`, `posgw status`) load a config and never connect.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from posgw.protocols.contract import DEFAULT_TOPIC_PREFIX

DEFAULT_KEEPALIVE_S = 30
#: How long the broker keeps a disconnected client's session and queues its
#: messages: a process down over a long weekend still gets everything.
DEFAULT_SESSION_EXPIRY_S = 7 * 24 * 3600
#: MQTT 5 caps the Session Expiry Interval at 2^32-1 (0xFFFFFFFF = never expires).
MAX_SESSION_EXPIRY_S = 0xFFFFFFFF
DEFAULT_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class MqttConfig:
    """The `[mqtt]` table of gateway.toml and center.toml.

    `share_group` is the subscriber's (the center's): None subscribes plainly.
    With a `client_id` a persistent session can be kept (`session_expiry_s`).
    """

    host: str = "127.0.0.1"
    port: int = 1883
    topic_prefix: str = DEFAULT_TOPIC_PREFIX
    share_group: str | None = None
    client_id: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    keepalive: int = DEFAULT_KEEPALIVE_S
    session_expiry_s: int = DEFAULT_SESSION_EXPIRY_S


def tls_file_problems(config: MqttConfig) -> Iterator[tuple[str, str]]:
    """(key, reason) for each TLS file the config names and this user cannot
    read. Checked as the file is read: at connect time a missing file would
    only be retried forever, one warning every few seconds."""
    for key in ("tls_ca", "tls_cert", "tls_key"):
        path = getattr(config, key)
        if path is None:
            continue
        try:
            with open(path, "rb"):
                pass
        except OSError as exc:
            yield key, f"{path}: {(exc.strerror or 'cannot read').lower()}"
