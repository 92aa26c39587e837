"""The `posgw center` group's options, shared by every center sub-command.

Its own module so that center.py (the group) and center_gateways.py (two
of its sub-commands) both read them without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import click

from posgw.cli.common import center_config, fail

if TYPE_CHECKING:
    from posgw.center.config import CenterConfig

CONFIG_ENV = "POSGW_CENTER_CONFIG"


@dataclass(frozen=True, slots=True)
class CenterOptions:
    """The group's options, handed to its sub-commands through the context."""

    config_path: Path | None
    client_id: str | None


def config_of(ctx: click.Context) -> CenterConfig:
    """The configuration the group was given (-c or $POSGW_CENTER_CONFIG)."""
    options = ctx.find_object(CenterOptions)
    if options is None or options.config_path is None:
        fail("center", f"give the configuration: posgw center -c center.toml (or ${CONFIG_ENV})")
    config = center_config(options.config_path, "center config")
    if options.client_id:
        config = replace(config, mqtt=replace(config.mqtt, client_id=options.client_id))
    return config
