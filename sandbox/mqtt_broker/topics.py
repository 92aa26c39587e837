"""Topic names, topic filters, wildcard matching and `$share` parsing (MQTT 5 §4.7, §4.8.2).

Pure functions over strings; no broker state.
"""

from __future__ import annotations

from dataclasses import dataclass

SHARE_PREFIX = "$share/"
MULTI_LEVEL = "#"
SINGLE_LEVEL = "+"


@dataclass(frozen=True, slots=True)
class FilterSpec:
    """A subscription's filter with any `$share/<group>/` prefix split off."""

    topic_filter: str
    share_group: str | None = None


def valid_topic_name(topic: str) -> bool:
    """A PUBLISH topic: at least one character and no wildcard (§4.7.3)."""
    return bool(topic) and SINGLE_LEVEL not in topic and MULTI_LEVEL not in topic


def valid_topic_filter(topic_filter: str) -> bool:
    """`#` only as the whole last level, `+` only as a whole level (§4.7.1)."""
    if not topic_filter:
        return False
    levels = topic_filter.split("/")
    last = len(levels) - 1
    for index, level in enumerate(levels):
        if MULTI_LEVEL in level and (level != MULTI_LEVEL or index != last):
            return False
        if SINGLE_LEVEL in level and level != SINGLE_LEVEL:
            return False
    return True


def parse_filter(raw: str) -> FilterSpec | None:
    """The filter and share group of a SUBSCRIBE entry, or None when invalid.

    `$share/<group>/<filter>`: the group is non-empty and holds no `/`, `+`
    or `#`; the filter after it follows the usual rules (§4.8.2).
    """
    if not raw.startswith(SHARE_PREFIX):
        return FilterSpec(raw) if valid_topic_filter(raw) else None
    group, slash, topic_filter = raw[len(SHARE_PREFIX):].partition("/")
    if not slash or not group or SINGLE_LEVEL in group or MULTI_LEVEL in group:
        return None
    return FilterSpec(topic_filter, group) if valid_topic_filter(topic_filter) else None


def topic_matches(topic_filter: str, topic: str) -> bool:
    """Whether a (valid, unshared) filter matches a topic name.

    Topics starting with `$` are reserved for the server: a filter whose
    first level is a wildcard does not match them (§4.7.2).
    """
    if topic[:1] == "$" and topic_filter[:1] in (SINGLE_LEVEL, MULTI_LEVEL):
        return False
    filter_levels = topic_filter.split("/")
    topic_levels = topic.split("/")
    for index, level in enumerate(filter_levels):
        if level == MULTI_LEVEL:
            return True  # also matches the parent: "a/#" matches "a"
        if index >= len(topic_levels):
            return False
        if level != SINGLE_LEVEL and level != topic_levels[index]:
            return False
    return len(filter_levels) == len(topic_levels)
