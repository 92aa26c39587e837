"""MQTT topic names (DESIGN.md, "MQTT" contract table). Prefix default `pos/v1`."""

from __future__ import annotations

DEFAULT_TOPIC_PREFIX = "pos/v1"
GATEWAY_SEGMENT = "gateway"  # reserved: no terminal may be called "gateway"


def tx_topic(prefix: str, branch_id: str, terminal_id: str) -> str:
    return f"{prefix}/{branch_id}/{terminal_id}/tx"


def terminal_status_topic(prefix: str, branch_id: str, terminal_id: str) -> str:
    return f"{prefix}/{branch_id}/{terminal_id}/status"


def gateway_status_topic(prefix: str, branch_id: str) -> str:
    return f"{prefix}/{branch_id}/{GATEWAY_SEGMENT}/status"


def reconciliation_topic(prefix: str, branch_id: str, terminal_id: str) -> str:
    """Per terminal, like `tx`: a batch belongs to one terminal."""
    return f"{prefix}/{branch_id}/{terminal_id}/reconciliation"


def cases_topic(prefix: str, branch_id: str) -> str:
    return f"{prefix}/{branch_id}/cases"


def command_topic(prefix: str, branch_id: str) -> str:
    return f"{prefix}/{branch_id}/cmd"


def command_reply_topic(prefix: str, branch_id: str) -> str:
    return f"{prefix}/{branch_id}/cmd/reply"
