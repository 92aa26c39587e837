"""Properties of the MACs and of MACing whole messages, for any data and any key."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from posgw.gateway.profiles import load_profile
from posgw.protocols.iso8583.codec import Codec
from posgw.protocols.iso8583.errors import Iso8583Error
from posgw.protocols.iso8583.message import Message
from posgw.protocols.mac import (
    MAC_LENGTH,
    MacAlgorithm,
    MacCheck,
    MacKey,
    MacSpec,
    check_message,
    compute_mac,
    mac_input,
    macs_equal,
    sign_message,
)
from posgw.protocols.profile import Profile
from tests.strategies import messages

MACED_PROFILES = ("unionpay-tpdu", "iso87-binary")  # field 64 alg3, field 128 AES-CMAC


def retail_keys() -> st.SearchStrategy[MacKey]:
    return st.binary(min_size=16, max_size=16).filter(lambda k: k[:8] != k[8:]).map(
        lambda k: MacKey(MacAlgorithm.RETAIL, k))


def aes_keys() -> st.SearchStrategy[MacKey]:
    return st.sampled_from((16, 24, 32)).flatmap(
        lambda n: st.binary(min_size=n, max_size=n)).map(
        lambda k: MacKey(MacAlgorithm.AES_CMAC, k))


ANY_KEY = st.one_of(retail_keys(), aes_keys())
PADDINGS = st.sampled_from((1, 2))


@given(ANY_KEY, st.binary(min_size=1, max_size=300), st.data(), PADDINGS)
def test_any_single_bit_flip_changes_the_mac(key: MacKey, data: bytes, draw: st.DataObject,
                                             padding: int) -> None:
    bit = draw.draw(st.integers(0, len(data) * 8 - 1))
    flipped = bytearray(data)
    flipped[bit // 8] ^= 0x80 >> (bit % 8)
    assert compute_mac(key, bytes(flipped), padding) != compute_mac(key, data, padding)


@given(ANY_KEY, st.binary(max_size=300), PADDINGS)
def test_the_mac_is_8_bytes_and_the_same_for_the_same_input(key: MacKey, data: bytes,
                                                             padding: int) -> None:
    mac = compute_mac(key, data, padding)
    assert len(mac) == MAC_LENGTH and mac == compute_mac(key, data, padding)


@given(st.tuples(retail_keys(), retail_keys()) | st.tuples(aes_keys(), aes_keys()),
       st.binary(max_size=100))
def test_another_key_gives_another_mac(keys: tuple[MacKey, MacKey], data: bytes) -> None:
    first, second = keys
    assume(first.key != second.key)
    assert compute_mac(first, data) != compute_mac(second, data)


@given(retail_keys(), st.binary(max_size=100).filter(lambda d: len(d) % 8))
def test_padding_1_cannot_see_trailing_zero_bytes_but_padding_2_can(key: MacKey,
                                                                     data: bytes) -> None:
    # Why a MAC over ISO 8583 needs the message's own framing (and why 2 exists).
    assert compute_mac(key, data + b"\0", 1) == compute_mac(key, data, 1)
    assert compute_mac(key, data + b"\0", 2) != compute_mac(key, data, 2)


@given(st.binary(min_size=8, max_size=8), st.binary(min_size=8, max_size=8))
def test_constant_time_compare_agrees_with_equality(a: bytes, b: bytes) -> None:
    assert macs_equal(a, b) is (a == b) and macs_equal(a, a)


# --- whole messages -----------------------------------------------------------------


def maced(name: str) -> tuple[Profile, Codec, MacSpec]:
    profile = load_profile(name)
    assert profile.mac is not None
    return profile, Codec(profile.iso8583), profile.mac


def key_for(spec: MacSpec) -> st.SearchStrategy[MacKey]:
    return retail_keys() if spec.algorithm is MacAlgorithm.RETAIL else aes_keys()


def macable(profile: Profile, spec: MacSpec) -> st.SearchStrategy[Message]:
    return messages(profile.iso8583).map(lambda m: Message(
        m.mti, {n: v for n, v in m.fields.items() if n < spec.field}))


@pytest.mark.parametrize("name", MACED_PROFILES)
@given(data=st.data())
def test_a_signed_message_decodes_and_verifies(name: str, data: st.DataObject) -> None:
    profile, codec, spec = maced(name)
    key = data.draw(key_for(spec))
    encoded = sign_message(codec, data.draw(macable(profile, spec)), spec, key)
    decoded = codec.decode(encoded)
    assert max(decoded.fields) == spec.field  # the MAC is the last field
    assert decoded.fields[spec.field] == encoded[-MAC_LENGTH:]
    assert mac_input(encoded, spec.field) == encoded[:-MAC_LENGTH]
    assert check_message(encoded, decoded, spec, key) is MacCheck.VALID


@pytest.mark.parametrize("name", MACED_PROFILES)
@given(data=st.data())
def test_any_changed_byte_of_a_signed_message_is_caught(name: str, data: st.DataObject) -> None:
    profile, codec, spec = maced(name)
    key = data.draw(key_for(spec))
    encoded = bytearray(sign_message(codec, data.draw(macable(profile, spec)), spec, key))
    position = data.draw(st.integers(0, len(encoded) - 1))
    encoded[position] ^= data.draw(st.integers(1, 255))
    try:
        decoded = codec.decode(bytes(encoded))
    except Iso8583Error:
        return  # the codec refuses it before any MAC is looked at
    assert check_message(bytes(encoded), decoded, spec, key) is not MacCheck.VALID


@pytest.mark.parametrize("name", MACED_PROFILES)
@given(data=st.data())
def test_a_message_signed_under_another_key_is_a_mismatch(name: str,
                                                          data: st.DataObject) -> None:
    profile, codec, spec = maced(name)
    mine, theirs = data.draw(key_for(spec)), data.draw(key_for(spec))
    assume(mine.key != theirs.key)
    encoded = sign_message(codec, data.draw(macable(profile, spec)), spec, theirs)
    assert check_message(encoded, codec.decode(encoded), spec, mine) is MacCheck.MISMATCH


@pytest.mark.parametrize("name", MACED_PROFILES)
@given(garbage=st.binary(max_size=400), data=st.data())
def test_garbage_that_decodes_never_breaks_the_check(name: str, garbage: bytes,
                                                     data: st.DataObject) -> None:
    _, codec, spec = maced(name)
    try:
        decoded = codec.decode(garbage)
    except Iso8583Error:
        return
    assert check_message(garbage, decoded, spec, data.draw(key_for(spec))) in MacCheck


def test_a_message_without_its_mac_field_is_missing() -> None:
    _, codec, spec = maced("unionpay-tpdu")
    request = Message("0200", {3: "000000", 11: "000123", 41: "T0000902"})
    encoded = codec.encode(request)
    key = MacKey(MacAlgorithm.RETAIL, bytes.fromhex("0123456789ABCDEFFEDCBA9876543210"))
    assert check_message(encoded, codec.decode(encoded), spec, key) is MacCheck.MISSING


def test_a_field_after_the_mac_field_cannot_be_signed() -> None:
    _, codec, spec = maced("iso87-binary")
    spec64 = MacSpec(64, spec.algorithm, spec.error_response)
    key = MacKey(MacAlgorithm.AES_CMAC, bytes(16))
    with pytest.raises(Iso8583Error, match="after the MAC field"):
        sign_message(codec, Message("0800", {11: "000001", 70: "301"}), spec64, key)


def test_fields_after_the_mac_field_make_it_not_last() -> None:
    _, codec, spec = maced("iso87-binary")
    spec64 = MacSpec(64, spec.algorithm, spec.error_response)
    encoded = codec.encode(Message("0800", {11: "000001", 64: bytes(8), 70: "301"}))
    key = MacKey(MacAlgorithm.AES_CMAC, bytes(16))
    assert check_message(encoded, codec.decode(encoded), spec64, key) is MacCheck.NOT_LAST
