"""Outbox → MQTT forwarding (QoS 1, delivered only after PUBACK)."""

from posgw.gateway.config import MqttConfig as MqttSettings
from posgw.gateway.forward.events import (
    TX_EVENT_SCHEMA,
    envelope,
    gateway_status,
    new_event_id,
    outbox_row,
    tx_event,
    utc_iso,
)
from posgw.gateway.forward.forwarder import DEFAULT_WINDOW, OutboxForwarder
from posgw.gateway.forward.topics import (
    DEFAULT_TOPIC_PREFIX,
    cases_topic,
    command_reply_topic,
    command_topic,
    gateway_status_topic,
    terminal_status_topic,
    tx_topic,
)

__all__ = [
    "DEFAULT_TOPIC_PREFIX",
    "DEFAULT_WINDOW",
    "TX_EVENT_SCHEMA",
    "MqttSettings",
    "OutboxForwarder",
    "cases_topic",
    "command_reply_topic",
    "command_topic",
    "envelope",
    "gateway_status",
    "gateway_status_topic",
    "new_event_id",
    "outbox_row",
    "terminal_status_topic",
    "tx_event",
    "tx_topic",
    "utc_iso",
]
