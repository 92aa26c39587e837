"""Hypothesis strategies: any packet the codec must round-trip, per protocol level."""

from __future__ import annotations

from typing import TypeVar

from hypothesis import strategies as st

from posgw.sandbox.mqtt_broker.packets import (
    MQTT_5,
    MQTT_311,
    ConnAck,
    Connect,
    Disconnect,
    Packet,
    PingReq,
    PingResp,
    PubAck,
    Publish,
    SubAck,
    Subscribe,
    SubscriptionRequest,
    UnsubAck,
    Unsubscribe,
    Will,
)
from posgw.sandbox.mqtt_broker.wire import (
    MAX_UINT32,
    MAX_VARINT,
    PROPERTY_KINDS,
    REPEATABLE,
    Kind,
    Properties,
    PropertyValue,
)

T = TypeVar("T")
# MQTT strings: well-formed UTF-8 without U+0000 (§1.5.4); surrogates cannot be encoded.
texts = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"),
                max_size=12)
blobs = st.binary(max_size=24)
packet_ids = st.integers(1, 0xFFFF)
reason_bytes = st.integers(0, 0xFF)

_VALUES: dict[Kind, st.SearchStrategy[PropertyValue]] = {
    Kind.BYTE: st.integers(0, 0xFF),
    Kind.U16: st.integers(0, 0xFFFF),
    Kind.U32: st.integers(0, MAX_UINT32),
    Kind.VARINT: st.integers(0, MAX_VARINT),
    Kind.STR: texts,
    Kind.BINARY: blobs,
    Kind.PAIR: st.tuples(texts, texts),
}
_one_property = st.sampled_from(sorted(PROPERTY_KINDS)).flatmap(
    lambda ident: st.tuples(st.just(ident), _VALUES[PROPERTY_KINDS[ident]]))


def _once_unless_repeatable(item: tuple[int, PropertyValue]) -> object:
    return object() if item[0] in REPEATABLE else item[0]


def properties(version: int) -> st.SearchStrategy[Properties]:
    if version != MQTT_5:
        return st.just(())
    return st.lists(_one_property, max_size=4, unique_by=_once_unless_repeatable).map(tuple)


def wills(version: int) -> st.SearchStrategy[Will]:
    return st.builds(Will, texts, blobs, st.integers(0, 2), st.booleans(), properties(version))


@st.composite
def connects(draw: st.DrawFn, version: int) -> Connect:
    username = draw(st.none() | texts)
    password = draw(st.none() | blobs)
    if version == MQTT_311 and username is None:
        password = None  # 3.1.1 §3.1.2.9: no password without a user name
    return Connect(draw(texts), version, draw(st.booleans()), draw(st.integers(0, 0xFFFF)),
                   draw(st.none() | wills(version)), username, password,
                   draw(properties(version)))


@st.composite
def publishes(draw: st.DrawFn, version: int) -> Publish:
    qos = draw(st.integers(0, 2))
    return Publish(draw(texts), draw(blobs), qos, draw(st.booleans()),
                   draw(st.booleans()) if qos else False,
                   draw(packet_ids) if qos else None, draw(properties(version)))


def requests(version: int) -> st.SearchStrategy[SubscriptionRequest]:
    if version != MQTT_5:
        return st.builds(SubscriptionRequest, texts, st.integers(0, 2))
    return st.builds(SubscriptionRequest, texts, st.integers(0, 2), st.booleans(),
                     st.booleans(), st.integers(0, 2))


def some(items: st.SearchStrategy[T]) -> st.SearchStrategy[tuple[T, ...]]:
    """One to four of `items`: SUBSCRIBE, SUBACK and UNSUBSCRIBE carry at least one."""
    return st.lists(items, min_size=1, max_size=4).map(tuple)


def packets(version: int) -> st.SearchStrategy[Packet]:
    five = version == MQTT_5
    codes = reason_bytes if five else st.sampled_from([0x00, 0x01, 0x02, 0x80])
    return st.one_of(
        connects(version),
        st.builds(ConnAck, st.booleans(), reason_bytes if five else st.integers(0, 5),
                  properties(version)),
        publishes(version),
        st.builds(PubAck, st.integers(0, 0xFFFF), reason_bytes if five else st.just(0),
                  properties(version)),
        st.builds(Subscribe, packet_ids, some(requests(version)),
                  properties(version)),
        st.builds(SubAck, packet_ids, some(codes), properties(version)),
        st.builds(Unsubscribe, packet_ids, some(texts),
                  properties(version)),
        st.builds(UnsubAck, packet_ids,
                  st.lists(reason_bytes, max_size=4).map(tuple) if five else st.just(()),
                  properties(version)),
        st.just(PingReq()),
        st.just(PingResp()),
        st.builds(Disconnect, reason_bytes if five else st.just(0), properties(version)),
    )
