"""FreshEvents: the committer's events are a shortcut, never a second truth."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from posgw.gateway.forward.fresh import FreshEvents
from posgw.gateway.store.store import PendingEvent


def event(seq: int, *, sealed: bool = True) -> PendingEvent:
    return PendingEvent(seq, f"e{seq}", "t", "T1", False, b"{}" if sealed else None,
                        None if sealed else {})


def test_events_continuing_the_cursor_are_taken_up_to_the_limit() -> None:
    fresh = FreshEvents()
    fresh.add(event(seq) for seq in range(1, 6))
    assert [row.seq for row in fresh.take(0, 3) or []] == [1, 2, 3]
    assert [row.seq for row in fresh.take(3, 10) or []] == [4, 5]
    assert fresh.take(5, 10) == []


def test_a_gap_or_an_unsealed_event_sends_the_reader_to_the_table() -> None:
    fresh = FreshEvents()
    fresh.add([event(7), event(8)])
    assert fresh.take(5, 10) is None  # 6 is only in the table
    assert [row.seq for row in fresh.take(6, 10) or []] == [7, 8]
    fresh.add([event(9, sealed=False)])
    assert fresh.take(8, 10) is None


def test_events_the_table_already_gave_are_dropped() -> None:
    fresh = FreshEvents()
    fresh.add(event(seq) for seq in range(1, 5))
    assert [row.seq for row in fresh.take(2, 10) or []] == [3, 4]
    assert len(fresh) == 0


@given(batches=st.lists(st.integers(1, 40), max_size=30),
       capacity=st.integers(1, 64), window=st.integers(1, 16),
       reads=st.lists(st.booleans(), max_size=200))
def test_every_committed_event_is_published_once_in_order(
        batches: list[int], capacity: int, window: int, reads: list[bool]) -> None:
    """A model of the forwarder: commits land in the table and in FreshEvents;
    each round takes from FreshEvents or, on a gap (or when told to), reads
    the table after its cursor."""
    fresh, table, published = FreshEvents(capacity), [], []
    after_seq, seq = 0, 0
    pending = list(batches)
    for force_table in reads + [False] * (sum(batches) + len(batches) + 1):
        if pending and (not force_table or not published):
            committed = [event(seq + n) for n in range(1, pending.pop(0) + 1)]
            seq += len(committed)
            table.extend(committed)
            fresh.add(committed)
        rows = fresh.take(after_seq, window)
        if rows is None or force_table or (not rows and not pending):
            rows = [row for row in table if row.seq > after_seq][:window]
        published += [row.seq for row in rows]
        after_seq = rows[-1].seq if rows else after_seq
    assert published == list(range(1, seq + 1))
