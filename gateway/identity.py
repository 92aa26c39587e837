"""`GatewayIdentity`: who this gateway is on the wire.

Read by the pipeline, settlement, cases and commands alike; in a module of
its own so none of them imports another just for this type.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class GatewayIdentity:
    """The branch and gateway ids every payload carries, and the topic prefix."""

    branch_id: str
    gateway_id: str
    topic_prefix: str
