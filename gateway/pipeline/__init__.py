"""The request pipeline: decode → dedupe → risk → authorize → commit → respond."""

from gateway.pipeline.pipeline import GatewayIdentity, Pipeline
from gateway.pipeline.replay import RecentResponses, RequestKey

__all__ = ["GatewayIdentity", "Pipeline", "RecentResponses", "RequestKey"]
