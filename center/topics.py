"""What the center's ingest subscribes to, and which payloads each topic may carry.

Transaction events and batch reports are stored; terminal statuses, cases
and command replies (everything else a gateway's outbox numbers with its
seq) are verified and their seq recorded (center/seq_gaps.py); cases and
replies are also kept in their own tables (center/case_records.py), and of
the terminal and gateway statuses the latest is kept per terminal and
gateway (center/fleet_status.py). The
schema a payload may name depends on the topic it came on: a status topic
carries no transaction event.
"""

from __future__ import annotations

from typing import Any

from posgw.drivers.mqtt import MqttConfig
from posgw.protocols.contract import (
    CASE_SCHEMA,
    COMMAND_REPLY_SCHEMA,
    GATEWAY_STATUS_SCHEMA,
    RECONCILIATION_SCHEMA,
    TERMINAL_STATUS_SCHEMA,
    TX_EVENT_SCHEMA,
    cases_topic,
    command_reply_topic,
    reconciliation_filter,
    shared,
    terminal_status_topic,
    tx_filter,
)

#: What arrives on the topics the ingest subscribes to: transaction events on
#: `{prefix}/{branch}/{terminal}/tx`, and a gateway's report of a closed batch on
#: `{prefix}/{branch}/{terminal}/reconciliation`, stored in its own table
#: (center_reconciliations), never among the events.
INGESTED_SCHEMAS = frozenset({TX_EVENT_SCHEMA, RECONCILIATION_SCHEMA})
#: What else a gateway sends through its outbox, numbered by the same seq:
#: verified, and its seq recorded (so a seq that never arrives is seen as
#: missing: center/seq_gaps.py), never stored. A gateway status carries
#: the outbox's last seq, not one of its own, and records nothing.
COUNTED_SCHEMAS = {"status": frozenset({TERMINAL_STATUS_SCHEMA, GATEWAY_STATUS_SCHEMA}),
                   "cases": frozenset({CASE_SCHEMA}),
                   "reply": frozenset({COMMAND_REPLY_SCHEMA})}


def accepted_on(topic: str) -> frozenset[str]:
    """The schemas a payload on `topic` may have (by the topic's last level)."""
    return COUNTED_SCHEMAS.get(topic.rpartition("/")[2], INGESTED_SCHEMAS)


def counted_only(payload: dict[str, Any]) -> bool:
    """A verified payload whose seq is recorded, not stored."""
    return payload.get("schema") not in INGESTED_SCHEMAS


def subscription_filters(mqtt: MqttConfig) -> tuple[str, ...]:
    """The ingest's subscriptions, shared by `share_group` when one is set:
    every terminal's transaction events and batch reports, and the statuses,
    cases and command replies whose seqs are only counted."""
    prefix = mqtt.topic_prefix
    return tuple(shared(topic_filter, mqtt.share_group)
                 for topic_filter in (tx_filter(prefix), reconciliation_filter(prefix),
                                      terminal_status_topic(prefix, "+", "+"),
                                      cases_topic(prefix, "+"),
                                      command_reply_topic(prefix, "+")))
