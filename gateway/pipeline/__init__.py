"""The request pipeline: decode → dedupe → risk → authorize → commit → respond."""

from posgw.gateway.identity import GatewayIdentity
from posgw.gateway.pipeline.pipeline import Pipeline
from posgw.gateway.pipeline.replay import RecentResponses, RequestKey

__all__ = ["GatewayIdentity", "Pipeline", "RecentResponses", "RequestKey"]
