"""The sans-IO packet codec: known byte vectors, round trips, and hostile input."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from posgw.sandbox.mqtt_broker.codec import decode, encode
from posgw.sandbox.mqtt_broker.packets import (
    MQTT_5,
    MQTT_311,
    ConnAck,
    Connect,
    Packet,
    PubAck,
    Publish,
    Subscribe,
    SubscriptionRequest,
)
from posgw.sandbox.mqtt_broker.stream import PacketReader
from posgw.sandbox.mqtt_broker.wire import (
    CodecError,
    MalformedPacket,
    Prop,
    Reason,
    decode_varint,
    encode_varint,
)
from tests.mqtt_broker.strategies import packets

VERSIONS = [MQTT_311, MQTT_5]
BIG = 1 << 20


@pytest.mark.parametrize(("value", "hex_bytes"), [
    # The table of MQTT 5 §1.5.5: the edges of one to four bytes.
    (0, "00"), (127, "7f"), (128, "8001"), (16_383, "ff7f"), (16_384, "808001"),
    (2_097_151, "ffff7f"), (2_097_152, "80808001"), (268_435_455, "ffffff7f"),
])
def test_varint_matches_the_standard_table(value: int, hex_bytes: str) -> None:
    assert encode_varint(value).hex() == hex_bytes
    assert decode_varint(bytes.fromhex(hex_bytes), 0) == (value, len(hex_bytes) // 2)


def test_varint_of_five_bytes_is_malformed() -> None:
    with pytest.raises(MalformedPacket):
        decode_varint(bytes.fromhex("ffffffff01"), 0)


def test_varint_cut_short_is_incomplete_not_an_error() -> None:
    assert decode_varint(bytes.fromhex("ff80"), 0) is None


@pytest.mark.parametrize(("version", "hex_bytes"), [
    # 32: PUBLISH QoS 1 | length | 0003 "a/b" | packet id 10 | [no properties] | "hi"
    (MQTT_5, "32 0a 0003 612f62 000a 00 6869"),
    (MQTT_311, "32 09 0003 612f62 000a 6869"),
])
def test_publish_qos1_bytes(version: int, hex_bytes: str) -> None:
    packet = Publish("a/b", b"hi", qos=1, packet_id=10)
    assert encode(packet, version) == bytes.fromhex(hex_bytes)
    assert decode(bytes.fromhex(hex_bytes), version) == packet


def test_connack_with_maximum_qos_property() -> None:
    # 20: CONNACK | length 5 | no session | success | properties: length 2, Maximum QoS = 1
    wire = bytes.fromhex("20 05 00 00 02 2401")
    assert decode(wire, MQTT_5) == ConnAck(False, 0, ((Prop.MAXIMUM_QOS, 1),))


def test_puback_success_uses_the_short_form() -> None:
    # 40: PUBACK | length 2 | packet id 10 (reason and properties omitted, §3.4.2.1)
    assert encode(PubAck(10), MQTT_5) == bytes.fromhex("40 02 000a")


def test_subscribe_options_byte() -> None:
    # 82: SUBSCRIBE | length 9 | id 1 | no properties | 0003 "a/#" | QoS 1 + No Local (0x05)
    wire = bytes.fromhex("82 09 0001 00 0003 612f23 05")
    request = SubscriptionRequest("a/#", qos=1, no_local=True)
    assert decode(wire, MQTT_5) == Subscribe(1, (request,))
    assert encode(Subscribe(1, (request,)), MQTT_5) == wire


@pytest.mark.parametrize("version", VERSIONS)
@given(data=st.data())
def test_every_packet_round_trips(version: int, data: st.DataObject) -> None:
    packet = data.draw(packets(version))
    assert decode(encode(packet, version), version) == packet


@pytest.mark.parametrize("version", VERSIONS)
@given(data=st.data())
def test_a_stream_cut_anywhere_yields_the_same_packets(version: int,
                                                        data: st.DataObject) -> None:
    sent: list[Packet] = data.draw(st.lists(packets(version), min_size=1, max_size=4))
    if any(isinstance(p, Connect) for p in sent):  # CONNECT switches the reader's level
        sent = [Connect("c", version), *(p for p in sent if not isinstance(p, Connect))]
    stream = b"".join(encode(p, version) for p in sent)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    reader = PacketReader(BIG)
    reader.version = version
    received: list[Packet] = []
    for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        received += reader.feed(stream[start:end])
    assert received == sent and reader.error is None


@pytest.mark.parametrize("version", VERSIONS)
@settings(max_examples=500)  # cheap examples: look harder
@given(garbage=st.binary(max_size=64))
def test_garbage_decodes_or_raises_the_codec_error(version: int, garbage: bytes) -> None:
    with contextlib.suppress(CodecError):
        decode(garbage, version)


@pytest.mark.parametrize("version", VERSIONS)
@given(data=st.data())
def test_damaged_packets_decode_or_raise_the_codec_error(version: int,
                                                         data: st.DataObject) -> None:
    wire = bytearray(encode(data.draw(packets(version)), version))
    for _ in range(data.draw(st.integers(1, 3))):
        wire[data.draw(st.integers(0, len(wire) - 1))] = data.draw(st.integers(0, 255))
    wire = wire[:data.draw(st.integers(0, len(wire)))]
    with contextlib.suppress(CodecError):
        decode(bytes(wire), version)
    PacketReader(BIG).feed(bytes(wire))  # the stream reader never raises at all


def test_reader_keeps_the_packets_before_a_malformed_one() -> None:
    reader = PacketReader(BIG)
    good = encode(Connect("c"), MQTT_5)
    assert reader.feed(good + bytes.fromhex("00 00")) == [Connect("c")]  # type 0 is reserved
    assert reader.error is not None
    assert reader.feed(good) == []  # nothing is decoded after the error


def test_reader_refuses_a_packet_over_the_maximum_size() -> None:
    reader = PacketReader(max_packet_size=100)
    assert reader.feed(encode(Publish("t", b"x" * 200), MQTT_5)[:10]) == []
    assert reader.error is not None and reader.error.code == Reason.PACKET_TOO_LARGE


def test_connect_with_an_unknown_protocol_level_says_so() -> None:
    # 10: CONNECT | length 13 | 0004 "MQTT" | level 6 | flags: clean | keepalive 60 | 0001 "c"
    wire = bytes.fromhex("10 0d 0004 4d515454 06 02 003c 0001 63")
    with pytest.raises(MalformedPacket) as raised:
        decode(wire, MQTT_5)
    assert raised.value.code == Reason.UNSUPPORTED_PROTOCOL_VERSION


def test_a_repeated_single_property_is_a_protocol_error() -> None:
    # 40: PUBACK | length 10 | id 1 | reason 0 | properties length 6: Reason String "" twice
    wire = bytes.fromhex("40 0a 0001 00 06 1f0000 1f0000")
    with pytest.raises(MalformedPacket) as raised:
        decode(wire, MQTT_5)
    assert raised.value.code == Reason.PROTOCOL_ERROR


def test_publish_at_qos_0_with_dup_is_malformed() -> None:
    with pytest.raises(MalformedPacket):
        decode(bytes.fromhex("38 04 0001 74 00"), MQTT_5)  # 38: PUBLISH DUP=1 QoS=0
