"""posgw: POS terminal integration gateway.

The repository's top-level folders are this package's parts (see
pyproject.toml and the README's "where things live"):

- `posgw.protocols`  ISO 8583, framing, TLV, MACs, the wire contract (sans-IO)
- `posgw.drivers`    serial, USB and TCP transports, the clock, backoff
- `posgw.gateway`    the branch daemon
- `posgw.center`     the payment center
- `posgw.simulator`  terminal and acquirer-host simulators
- `posgw.sandbox`    the whole system on one machine (demo stack, brokers)
- `posgw.cli`        the `posgw` command line

Importing `posgw` imports none of them.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("posgw")
except PackageNotFoundError:  # imported from a checkout that was never installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
