"""Shared fixtures: shipped profiles and their compiled codecs."""

from __future__ import annotations

import pytest

from posgw.gateway.profiles import builtin_names, load_profile
from posgw.protocols.iso8583.codec import Codec

SHIPPED = builtin_names()


@pytest.fixture(scope="session")
def codecs() -> dict[str, Codec]:
    return {name: Codec(load_profile(name).iso8583) for name in SHIPPED}
