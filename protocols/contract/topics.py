"""MQTT topics of the wire contract (DESIGN.md, "MQTT" table): build and parse.

Every topic is `{prefix}/{branch}/...`; the prefix is configurable and
defaults to `pos/v1`. The center subscribes with filters built here too, so
a topic the gateway publishes and the filter the center listens on cannot
drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

DEFAULT_TOPIC_PREFIX = "pos/v1"
GATEWAY_SEGMENT = "gateway"  # reserved: no terminal may be called "gateway"
SHARE_PREFIX = "$share"  # MQTT 5 shared subscriptions: $share/{group}/{filter}


class TopicKind(StrEnum):
    """The last segment(s) of a topic: what its payloads are."""

    TX = "tx"
    TERMINAL_STATUS = "status"
    GATEWAY_STATUS = "gateway/status"
    RECONCILIATION = "reconciliation"
    CASES = "cases"
    COMMAND = "cmd"
    COMMAND_REPLY = "cmd/reply"
    CONFIRM = "confirm"


@dataclass(frozen=True, slots=True)
class Topic:
    """A parsed topic: its kind, branch and (for per-terminal topics) terminal."""

    kind: TopicKind
    branch_id: str
    terminal_id: str | None = None  # for CONFIRM: the gateway id


def tx_topic(prefix: str, branch_id: str, terminal_id: str) -> str:
    return f"{prefix}/{branch_id}/{terminal_id}/{TopicKind.TX}"


def terminal_status_topic(prefix: str, branch_id: str, terminal_id: str) -> str:
    return f"{prefix}/{branch_id}/{terminal_id}/{TopicKind.TERMINAL_STATUS}"


def gateway_status_topic(prefix: str, branch_id: str) -> str:
    return f"{prefix}/{branch_id}/{TopicKind.GATEWAY_STATUS}"


def reconciliation_topic(prefix: str, branch_id: str, terminal_id: str) -> str:
    """Per terminal, like `tx`: a batch belongs to one terminal."""
    return f"{prefix}/{branch_id}/{terminal_id}/{TopicKind.RECONCILIATION}"


def cases_topic(prefix: str, branch_id: str) -> str:
    return f"{prefix}/{branch_id}/{TopicKind.CASES}"


def command_topic(prefix: str, branch_id: str) -> str:
    return f"{prefix}/{branch_id}/{TopicKind.COMMAND}"


def command_reply_topic(prefix: str, branch_id: str) -> str:
    return f"{prefix}/{branch_id}/{TopicKind.COMMAND_REPLY}"


def confirm_topic(prefix: str, branch_id: str, gateway_id: str) -> str:
    """Center to one gateway: the event_ids the center now holds (confirm.v1).

    Per gateway, not per branch: a branch may run several gateways, and each
    forgets only what the center confirmed of its own outbox.
    """
    return f"{prefix}/{branch_id}/{gateway_id}/{TopicKind.CONFIRM}"


#: What the center's ingest stores and therefore confirms (confirm.v1);
#: statuses, cases and command replies are done at the broker's PUBACK.
CONFIRMED_KINDS = frozenset({TopicKind.TX, TopicKind.RECONCILIATION})


def awaits_confirmation(topic: str) -> bool:
    """True when an event published on `topic` is done only once confirmed."""
    return topic.rpartition("/")[2] in CONFIRMED_KINDS


def tx_filter(prefix: str) -> str:
    """Every branch's and terminal's transaction events."""
    return tx_topic(prefix, "+", "+")


def reconciliation_filter(prefix: str) -> str:
    """Every branch's and terminal's batch reconciliation reports."""
    return reconciliation_topic(prefix, "+", "+")


def shared(topic_filter: str, group: str | None) -> str:
    """`topic_filter` as a shared subscription of `group`; unchanged without one."""
    return f"{SHARE_PREFIX}/{group}/{topic_filter}" if group else topic_filter


def parse_topic(prefix: str, topic: str) -> Topic | None:
    """The kind, branch and terminal of a contract topic; None for any other."""
    head = f"{prefix}/"
    if not topic.startswith(head):
        return None
    parts = topic[len(head):].split("/")
    if len(parts) == 2 and parts[1] in (TopicKind.CASES, TopicKind.COMMAND):
        return Topic(TopicKind(parts[1]), parts[0])
    if len(parts) != 3 or not all(parts):
        return None
    branch_id, middle, last = parts
    if (middle, last) == (GATEWAY_SEGMENT, "status"):
        return Topic(TopicKind.GATEWAY_STATUS, branch_id)
    if (middle, last) == ("cmd", "reply"):
        return Topic(TopicKind.COMMAND_REPLY, branch_id)
    if last in (TopicKind.TX, TopicKind.TERMINAL_STATUS, TopicKind.RECONCILIATION,
                TopicKind.CONFIRM):
        return Topic(TopicKind(last), branch_id, middle)
    return None
