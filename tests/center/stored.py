"""Reading what a center stored, from the test's side of the database."""

from __future__ import annotations

import asyncio
from collections import Counter

from sqlalchemy import select

from posgw.center.db import CenterStore
from posgw.center.models import ReceivedEvent

POLL_S = 0.05


def stored_ids(url: str) -> list[str]:
    """Every stored event_id, repeats included (the table must hold none)."""
    store = CenterStore(url, create=False)
    try:
        with store.session() as session:
            return list(session.scalars(select(ReceivedEvent.event_id)))
    finally:
        store.close()


async def wait_stored(url: str, count: int, timeout: float = 20.0) -> list[str]:
    """Polls the table with a deadline until it holds at least `count` rows."""
    ids: list[str] = []
    try:
        async with asyncio.timeout(timeout):
            while len(ids := await asyncio.to_thread(stored_ids, url)) < count:
                await asyncio.sleep(POLL_S)
    except TimeoutError:
        raise AssertionError(f"{len(ids)} of {count} events stored after {timeout} s") from None
    return ids


def assert_each_once(stored: list[str], numbers: range) -> None:
    """The ids `wires(keys, numbers)` published, each stored exactly once."""
    repeats = [event_id for event_id, seen in Counter(stored).items() if seen > 1]
    assert not repeats, f"stored twice: {repeats[:5]}"
    missing = sorted({f"ev-B001-T0001-{n}" for n in numbers} - set(stored))
    assert not missing, f"{len(missing)} never stored, e.g. {missing[:5]}"
    assert len(stored) == len(numbers)
