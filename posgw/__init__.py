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

__all__ = ["__version__"]


def __getattr__(name: str) -> str:
    """`posgw.__version__`, read on first use: importlib.metadata costs every
    `posgw` command ~25 ms at start-up (a tenth of `posgw status`)."""
    if name != "__version__":
        raise AttributeError(f"module 'posgw' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("posgw")
    except PackageNotFoundError:  # imported from a checkout that was never installed
        return "0+unknown"
