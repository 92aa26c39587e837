"""How much of the quarantine one source may fill: rows up to a cap, then counts.

A source is the branch level of the topic a payload came on: a gateway's
broker ACL confines it to its own branch's topics, so whatever floods the
center from one branch (a broken gateway, a stolen password) fills at most
`rows_per_source` rows; past that each payload is only counted, per source
and kind, in center_quarantine_overflow (issue 17, finding 5: 5,000 junk
payloads grew the database by 80 MB). Both are written in the batch's own
transaction.

The cap counts the rows a source already holds once per process (one
SELECT, on first sight of the source) and then in memory: several center
processes may together keep a little more than the cap, never unboundedly
more.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Sequence
from dataclasses import replace

from posgw.center.rows import MAX_SOURCE, QuarantineRow

#: Enough to investigate a misbehaving branch; each row is at most ~16 KB.
DEFAULT_ROWS_PER_SOURCE = 1_000
#: Sources remembered at most (topics are chosen by whoever publishes);
#: past it every new one is counted under OTHER_SOURCES.
MAX_SOURCES = 10_000
OTHER_SOURCES = "(other)"

Overflow = collections.Counter[tuple[str, str]]  # (source, kind) -> payloads not kept


def topic_source(topic: str, prefix: str) -> str:
    """The branch level of `topic` under `prefix`, bounded ("" if none)."""
    rest = topic.removeprefix(f"{prefix}/") if topic.startswith(f"{prefix}/") else topic
    return rest.split("/", 1)[0][:MAX_SOURCE]


class QuarantineCap:
    def __init__(self, rows_per_source: int = DEFAULT_ROWS_PER_SOURCE) -> None:
        self.rows_per_source = rows_per_source
        self._held: dict[str, int] = {}

    def split(self, rows: Sequence[QuarantineRow], count_held: Callable[[str], int]
              ) -> tuple[list[QuarantineRow], Overflow]:
        """(the rows to keep, the counts of those past the cap). `count_held`
        (a SELECT, blocking) is asked once per source per process."""
        kept: list[QuarantineRow] = []
        overflow: Overflow = collections.Counter()
        for row in rows:
            source = self._known(row.source, count_held)
            if self._held[source] < self.rows_per_source:
                self._held[source] += 1
                kept.append(row if source == row.source else replace(row, source=source))
            else:
                overflow[(source, row.kind)] += 1
        return kept, overflow

    def forget(self) -> None:
        """After a failed write: the next batch counts again from the table."""
        self._held.clear()

    def _known(self, source: str, count_held: Callable[[str], int]) -> str:
        if source not in self._held:
            if len(self._held) >= MAX_SOURCES:
                source = OTHER_SOURCES
            if source not in self._held:
                self._held[source] = count_held(source)
        return source
