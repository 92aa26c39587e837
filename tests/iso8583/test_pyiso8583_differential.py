"""Differential tests against pyiso8583 on the profiles that mirror its specs.

iso87-ascii mirrors pyiso8583's `default_ascii`, iso87-mixed its `default`:
the same message must encode to the same bytes on both sides, and each side
must decode the other's output to the same values.
"""

from __future__ import annotations

import iso8583
import iso8583.specs
import pytest
from hypothesis import HealthCheck, given, settings

from posgw.protocols.iso8583.codec import Codec
from posgw.protocols.iso8583.message import Message
from tests.strategies import messages

PEERS = {"iso87-ascii": iso8583.specs.default_ascii, "iso87-mixed": iso8583.specs.default}


def as_pyiso_doc(message: Message) -> dict[str, str]:
    """Our Message in pyiso8583's form: binary fields as upper-case hex strings."""
    doc = {"t": message.mti}
    for n, value in message.fields.items():
        doc[str(n)] = value.hex().upper() if isinstance(value, bytes) else value
    return doc


def pyiso_fields(decoded: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in decoded.items() if k not in ("t", "p", "1", "h")}


@pytest.mark.parametrize("profile", sorted(PEERS))
def test_both_codecs_agree_byte_for_byte(profile: str, codecs: dict[str, Codec]) -> None:
    codec, peer_spec = codecs[profile], PEERS[profile]

    @settings(max_examples=150, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(messages(codec.spec))
    def check(message: Message) -> None:
        ours = codec.encode(message)
        theirs, _ = iso8583.encode(as_pyiso_doc(message), peer_spec)
        assert ours == bytes(theirs)
        peer_view, _ = iso8583.decode(ours, peer_spec)
        assert pyiso_fields(peer_view) == pyiso_fields(as_pyiso_doc(message))
        assert peer_view["t"] == message.mti
        assert codec.decode(bytes(theirs)) == message

    check()
