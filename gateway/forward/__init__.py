"""Outbox → MQTT forwarding (QoS 1, delivered only after PUBACK).

Topics and payloads are the wire contract's (`posgw.protocols.contract`), the
client and its config the drivers' (`posgw.drivers.mqtt`).
"""

from posgw.gateway.forward.events import new_event_id, outbox_row
from posgw.gateway.forward.forwarder import DEFAULT_WINDOW, OutboxForwarder

__all__ = [
    "DEFAULT_WINDOW",
    "OutboxForwarder",
    "new_event_id",
    "outbox_row",
]
