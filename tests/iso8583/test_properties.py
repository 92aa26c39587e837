"""Property tests: every shipped profile round-trips; garbage raises only DecodeError."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from posgw.protocols.iso8583.codec import Codec
from posgw.protocols.iso8583.errors import DecodeError
from posgw.protocols.iso8583.message import Message
from tests.conftest import SHIPPED
from tests.strategies import messages

_SETTINGS = settings(max_examples=60, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.mark.parametrize("profile", SHIPPED)
def test_random_valid_message_round_trips(profile: str, codecs: dict[str, Codec]) -> None:
    codec = codecs[profile]

    @_SETTINGS
    @given(messages(codec.spec))
    def check(message: Message) -> None:
        wire = codec.encode(message)
        assert codec.decode(wire) == message
        assert codec.encode(codec.decode(wire)) == wire

    check()


@pytest.mark.parametrize("profile", SHIPPED)
def test_random_bytes_raise_only_decode_error(profile: str, codecs: dict[str, Codec]) -> None:
    codec = codecs[profile]

    @_SETTINGS
    @given(st.binary(max_size=300))
    def check(data: bytes) -> None:
        try:
            codec.decode(data)
        except DecodeError as exc:
            assert 0 <= exc.offset <= len(data)

    check()


@pytest.mark.parametrize("profile", SHIPPED)
def test_mutated_messages_raise_only_decode_error(profile: str, codecs: dict[str, Codec]) -> None:
    codec = codecs[profile]

    @_SETTINGS
    @given(messages(codec.spec), st.data())
    def check(message: Message, data: st.DataObject) -> None:
        wire = bytearray(codec.encode(message))
        for _ in range(data.draw(st.integers(1, 4))):
            at = data.draw(st.integers(0, len(wire)))
            action = data.draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
            if action == "flip" and at < len(wire):
                wire[at] ^= data.draw(st.integers(1, 255))
            elif action == "insert":
                wire.insert(at, data.draw(st.integers(0, 255)))
            elif action == "delete" and at < len(wire):
                del wire[at]
            elif action == "truncate":
                del wire[at:]
        with contextlib.suppress(DecodeError):
            codec.decode(bytes(wire))

    check()
