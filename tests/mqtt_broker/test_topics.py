"""Topic filters, wildcard matching and `$share` parsing (MQTT 5 §4.7, §4.8.2)."""

from __future__ import annotations

import pytest

from posgw.sandbox.mqtt_broker.routing import SharedGroup, Subscription, SubscriptionIndex
from posgw.sandbox.mqtt_broker.topics import (
    FilterSpec,
    parse_filter,
    topic_matches,
    valid_topic_filter,
    valid_topic_name,
)


@pytest.mark.parametrize(("topic_filter", "topic", "expected"), [
    ("pos/v1/B1/T1/tx", "pos/v1/B1/T1/tx", True),
    ("pos/v1/+/+/tx", "pos/v1/B1/T1/tx", True),
    ("pos/v1/+/tx", "pos/v1/B1/T1/tx", False),       # + is exactly one level
    ("pos/v1/#", "pos/v1/B1/T1/tx", True),
    ("pos/v1/#", "pos/v1", True),                    # # also matches the parent level
    ("pos/v1/B1/#", "pos/v1/B2/x", False),
    ("+/+", "/finance", True),                       # an empty level is a level
    ("+", "/finance", False),
    ("#", "a/b/c", True),
    ("#", "$SYS/broker/load", False),                # $-topics: no leading wildcard
    ("+/broker/load", "$SYS/broker/load", False),
    ("$SYS/#", "$SYS/broker/load", True),
    ("a/b", "a/b/c", False),
    ("a/b/c", "a/b", False),
])
def test_topic_matching(topic_filter: str, topic: str, expected: bool) -> None:
    assert topic_matches(topic_filter, topic) is expected


@pytest.mark.parametrize(("topic_filter", "valid"), [
    ("a/+/c", True), ("a/#", True), ("#", True), ("+", True), ("/", True),
    ("", False), ("a/#/c", False), ("a#", False), ("a/b+", False), ("a/++", False),
])
def test_topic_filter_validity(topic_filter: str, valid: bool) -> None:
    assert valid_topic_filter(topic_filter) is valid


def test_topic_names_carry_no_wildcards() -> None:
    assert valid_topic_name("a/b")
    assert not valid_topic_name("a/+")
    assert not valid_topic_name("a/#")
    assert not valid_topic_name("")


@pytest.mark.parametrize(("raw", "expected"), [
    ("$share/center/pos/v1/+/+/tx", FilterSpec("pos/v1/+/+/tx", "center")),
    ("$share/g/#", FilterSpec("#", "g")),
    ("pos/v1/#", FilterSpec("pos/v1/#")),
    ("$share/g", None),            # no filter after the group
    ("$share//a", None),           # empty group
    ("$share/g+/a", None),         # wildcard in the group name
    ("$share/g/a/#/b", None),      # invalid filter after the group
])
def test_share_parsing(raw: str, expected: FilterSpec | None) -> None:
    assert parse_filter(raw) == expected


def test_shared_group_round_robins_over_online_members_only() -> None:
    group = SharedGroup(Subscription(cid, "t", 1, "g") for cid in ("a", "b", "c"))
    online = {"a", "c"}
    picks = [group.pick(online.__contains__) for _ in range(4)]
    assert [p.client_id for p in picks if p is not None] == ["a", "c", "a", "c"]


def test_shared_group_falls_back_to_offline_members_when_none_is_online() -> None:
    group = SharedGroup(Subscription(cid, "t", 1, "g") for cid in ("a", "b"))
    picks = [group.pick(lambda _cid: False) for _ in range(4)]
    assert [p.client_id for p in picks if p is not None] == ["a", "b", "a", "b"]


def test_index_forgets_a_filter_when_its_last_subscriber_leaves() -> None:
    index = SubscriptionIndex()
    subscription = Subscription("a", "x/+", 1)
    index.add(subscription)
    assert index.match("x/1").plain == ["x/+"]
    index.remove(subscription)
    assert index.match("x/1").plain == []
