"""`ConfigError`: a configuration file (gateway.toml, center.toml) is wrong.

Its own type, not the ISO 8583 codec's `SpecError`: a bad profile is a
terminal family described wrongly, a bad config is a deployment mistake, and
callers answer them differently. Lives at the bottom of the layers so the
gateway and the center both raise it.
"""

from __future__ import annotations


class ConfigError(Exception):
    """A configuration value is missing or wrong; names file, key and reason."""

    def __init__(self, key: str, reason: str, source: str = "") -> None:
        where = f"{source}: " if source else ""
        super().__init__(f"{where}{key}: {reason}")
        self.key = key
        self.reason = reason
        self.source = source

    @property
    def file(self) -> str:
        """The configuration file at fault ("" when parsed from a table)."""
        return self.source
