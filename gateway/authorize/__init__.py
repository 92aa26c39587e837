"""Getting a request authorized: stand-in locally, or an acquirer upstream.

The pipeline calls one `Authorizer`; which one runs is configuration
(`[upstream] mode`). Both answer with an `Authorization`; the upstream one
raises `UpstreamUnavailable` when the acquirer cannot be reached or does
not answer in time, and the pipeline then answers the terminal itself and
queues a reversal advice (0420) for the acquirer.
"""

from posgw.gateway.authorize.base import Authorization, Authorizer, UpstreamUnavailable
from posgw.gateway.authorize.standin import StandInAuthorizer
from posgw.gateway.authorize.upstream import Iso8583Upstream

__all__ = [
    "Authorization",
    "Authorizer",
    "Iso8583Upstream",
    "StandInAuthorizer",
    "UpstreamUnavailable",
]
