"""Which subscriptions a topic reaches: plain filters and shared groups.

Matching walks every distinct filter, so each topic's answer is cached
until the set of distinct filters changes: the demo publishes to a few
hundred topics over and over, and subscribes rarely.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from posgw.sandbox.mqtt_broker.topics import topic_matches

MATCH_CACHE_LIMIT = 50_000  # topics remembered before the cache starts afresh


@dataclass(frozen=True, slots=True)
class Subscription:
    client_id: str
    topic_filter: str  # without any $share prefix
    qos: int
    share_group: str | None = None
    no_local: bool = False
    retain_as_published: bool = False


class SharedGroup:
    """`$share/<name>/<filter>`: each message goes to one member (MQTT 5 §4.8.2)."""

    def __init__(self, members: Iterable[Subscription] = ()) -> None:
        self.members: dict[str, Subscription] = {m.client_id: m for m in members}
        self._order = list(self.members.values())  # what `pick` walks, rebuilt on change
        self._cursor = 0

    def add(self, subscription: Subscription) -> None:
        self.members[subscription.client_id] = subscription
        self._order = list(self.members.values())

    def remove(self, client_id: str) -> None:
        self.members.pop(client_id, None)
        self._order = list(self.members.values())

    def pick(self, online: Callable[[str], bool]) -> Subscription | None:
        """Round robin over connected members; over all members when none is.

        An offline member still holds a persistent session (a clean one is
        removed with its connection), so the message waits in its queue.
        """
        members = self._order
        count = len(members)
        if not count:
            return None
        for step in range(count):
            candidate = members[(self._cursor + step) % count]
            if online(candidate.client_id):
                self._cursor = (self._cursor + step + 1) % count
                return candidate
        chosen = members[self._cursor % count]
        self._cursor = (self._cursor + 1) % count
        return chosen


@dataclass(slots=True)
class Matches:
    plain: list[str]
    shared: list[tuple[str, str]]  # (group, filter)


class SubscriptionIndex:
    def __init__(self) -> None:
        self.plain: dict[str, dict[str, Subscription]] = {}
        self.shared: dict[tuple[str, str], SharedGroup] = {}
        self._cache: dict[str, Matches] = {}

    def add(self, subscription: Subscription) -> None:
        if subscription.share_group is None:
            members = self.plain.get(subscription.topic_filter)
            if members is None:
                members = self.plain[subscription.topic_filter] = {}
                self._cache.clear()
            members[subscription.client_id] = subscription
            return
        key = (subscription.share_group, subscription.topic_filter)
        group = self.shared.get(key)
        if group is None:
            group = self.shared[key] = SharedGroup()
            self._cache.clear()
        group.add(subscription)

    def remove(self, subscription: Subscription) -> None:
        if subscription.share_group is None:
            members = self.plain.get(subscription.topic_filter, {})
            members.pop(subscription.client_id, None)
            if not members and self.plain.pop(subscription.topic_filter, None) is not None:
                self._cache.clear()
            return
        key = (subscription.share_group, subscription.topic_filter)
        group = self.shared.get(key)
        if group is not None:
            group.remove(subscription.client_id)
            if not group.members:
                del self.shared[key]
                self._cache.clear()

    def match(self, topic: str) -> Matches:
        found = self._cache.get(topic)
        if found is None:
            if len(self._cache) >= MATCH_CACHE_LIMIT:
                self._cache.clear()
            found = self._cache[topic] = Matches(
                [f for f in self.plain if topic_matches(f, topic)],
                [key for key in self.shared if topic_matches(key[1], topic)])
        return found
