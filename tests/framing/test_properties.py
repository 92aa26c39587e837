"""Property tests for every framer: round trips, and garbage that never hurts.

Round trip: random payloads, framed, fed back cut at random chunk boundaries,
come out unchanged. Garbage: random bytes and mutated valid frames never raise
and never make a framer hold more than max_frame plus a few bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from posgw.protocols.framing import (
    BlockAccepted,
    CrcCheck,
    DleFramer,
    Envelope,
    Event,
    Framer,
    FrameReceived,
    Handshake,
    LengthHeader,
    LengthPrefixedFramer,
    Link,
    LinkConfig,
    LrcCheck,
    MessageReceived,
    SendAck,
    SendNak,
    StxEtxFramer,
)

SMALL_MAX = 64  # small enough that random input often exceeds it
SLACK = 8  # length header (4) + check (2) + rounding: what may sit beside max_frame

FRAMERS: dict[str, Callable[[int], Framer]] = {
    "binary2": lambda m: LengthPrefixedFramer(LengthHeader.BINARY2, m),
    "bcd2": lambda m: LengthPrefixedFramer(LengthHeader.BCD2, m),
    "ascii4": lambda m: LengthPrefixedFramer(LengthHeader.ASCII4, m),
    "hex4": lambda m: LengthPrefixedFramer(LengthHeader.HEX4, m),
    "stx-etx": lambda m: StxEtxFramer(max_frame=m),
    "stx-etx-7f-stx": lambda m: StxEtxFramer(check=LrcCheck(0x7F), covers_stx=True, max_frame=m),
    "stx-etx-crc": lambda m: StxEtxFramer(check=CrcCheck(), max_frame=m),
    "stx-etx-bcd2": lambda m: StxEtxFramer(inner_length=LengthHeader.BCD2, max_frame=m),
    "dle": lambda m: DleFramer(max_frame=m),
    "dle-lrc": lambda m: DleFramer(check=LrcCheck(0x7F), max_frame=m),
}
MARKER_FRAMERS = sorted(name for name in FRAMERS if name.startswith(("stx", "dle")))
# Delimited STX/ETX text cannot carry STX, ETX or ETB: its payloads avoid them.
TEXT_ONLY = {"stx-etx", "stx-etx-7f-stx", "stx-etx-crc"}
# Bytes that steer the state machines, drawn often so garbage hits every state.
SPECIAL = [0x00, 0x02, 0x03, 0x04, 0x05, 0x06, 0x10, 0x15, 0x17, 0x30, 0x39, 0x99, 0xFF]

special_bytes = st.lists(
    st.one_of(st.sampled_from(SPECIAL), st.integers(0, 255)), max_size=120
).map(bytes)


def payloads(name: str, max_size: int = SMALL_MAX) -> st.SearchStrategy[bytes]:
    if name in TEXT_ONLY:
        text = st.integers(0, 255).filter(lambda b: b not in (0x02, 0x03, 0x17))
        return st.lists(text, max_size=max_size).map(bytes)
    return st.binary(max_size=max_size)


def feed_in_chunks(framer: Framer, wire: bytes, cuts: list[int]) -> list[Event]:
    events: list[Event] = []
    for start, end in pairwise([0, *sorted(cuts), len(wire)]):
        events += framer.feed(wire[start:end])
    return events


@pytest.mark.parametrize("name", sorted(FRAMERS))
@settings(max_examples=50, deadline=None)
@given(data=st.data())
def test_round_trip_at_any_chunk_boundaries(name: str, data: st.DataObject) -> None:
    framer = FRAMERS[name](SMALL_MAX)
    messages = data.draw(st.lists(payloads(name), min_size=1, max_size=4))
    wire = b"".join(framer.frame(message) for message in messages)
    cuts = data.draw(st.lists(st.integers(0, len(wire)), max_size=10))
    assert feed_in_chunks(framer, wire, cuts) == [FrameReceived(m) for m in messages]
    assert framer.buffered == 0


@pytest.mark.parametrize("name", sorted(n for n in FRAMERS if n.startswith("stx")))
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_multi_block_round_trip(name: str, data: st.DataObject) -> None:
    framer = FRAMERS[name](SMALL_MAX)
    assert isinstance(framer, StxEtxFramer)
    message = data.draw(payloads(name))
    blocks = framer.frame_blocks(message, data.draw(st.integers(1, 16)))
    wire = b"".join(blocks)
    events = feed_in_chunks(framer, wire, data.draw(st.lists(st.integers(0, len(wire)))))
    earlier = sum(event.size for event in events[:-1] if isinstance(event, BlockAccepted))
    assert events[-1] == FrameReceived(message, earlier)
    assert len(events) == len(blocks)


@pytest.mark.parametrize("name", sorted(FRAMERS))
@settings(max_examples=50, deadline=None)
@given(chunks=st.lists(special_bytes, max_size=8))
def test_random_bytes_never_raise_and_stay_bounded(name: str, chunks: list[bytes]) -> None:
    framer = FRAMERS[name](SMALL_MAX)
    for chunk in chunks:
        for event in framer.feed(chunk):
            if isinstance(event, FrameReceived):
                assert len(event.payload) <= SMALL_MAX
        assert framer.buffered <= SMALL_MAX + SLACK


@st.composite
def mutated_wire(draw: st.DrawFn, name: str) -> bytes:
    """Valid frames with bytes flipped, dropped, inserted or duplicated."""
    framer = FRAMERS[name](SMALL_MAX)
    wire = bytearray(b"".join(framer.frame(m) for m in draw(st.lists(payloads(name), max_size=3))))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(wire)))
        match draw(st.sampled_from(["flip", "drop", "insert", "repeat"])):
            case "flip" if at < len(wire):
                wire[at] ^= draw(st.integers(1, 255))
            case "drop":
                del wire[at : at + 1]
            case "insert":
                wire[at:at] = bytes([draw(st.sampled_from(SPECIAL))])
            case "repeat":
                wire[at:at] = wire[at : at + draw(st.integers(1, 8))]
    return bytes(wire)


@pytest.mark.parametrize("name", sorted(FRAMERS))
@settings(max_examples=50, deadline=None)
@given(data=st.data())
def test_mutated_frames_never_raise_and_stay_bounded(name: str, data: st.DataObject) -> None:
    framer = FRAMERS[name](SMALL_MAX)
    wire = data.draw(mutated_wire(name))
    for start, end in pairwise(
        [0, *sorted(data.draw(st.lists(st.integers(0, len(wire))))), len(wire)]
    ):
        framer.feed(wire[start:end])
        assert framer.buffered <= SMALL_MAX + SLACK


@pytest.mark.parametrize("name", sorted(FRAMERS))
@settings(max_examples=50, deadline=None)
@given(data=st.data())
def test_link_recovers_after_garbage_and_a_quiet_gap(name: str, data: st.DataObject) -> None:
    handshake = Handshake.ACK_NAK if name in MARKER_FRAMERS else Handshake.NONE
    link = Link(FRAMERS[name](SMALL_MAX), LinkConfig(handshake=handshake))
    link.receive_data(data.draw(special_bytes), now=0.0)
    link.poll(100.0)  # past every timer, the multi-block retry window included
    message = data.draw(payloads(name))
    events = link.receive_data(link.framer.frame(message), now=100.5)
    assert [e for e in events if isinstance(e, MessageReceived)] == [
        MessageReceived(message, Envelope())
    ]


@pytest.mark.parametrize("name", MARKER_FRAMERS)
@settings(max_examples=50, deadline=None)
@given(data=st.data())
def test_link_never_raises_under_random_traffic_and_time(name: str, data: st.DataObject) -> None:
    link = Link(FRAMERS[name](SMALL_MAX), LinkConfig(handshake=Handshake.ENQ_ACK_NAK))
    now = 0.0
    for step in data.draw(st.lists(st.sampled_from(["rx", "poll", "send"]), max_size=20)):
        now += data.draw(st.sampled_from([0.0, 0.05, 0.3, 3.0, 13.0]))
        if step == "rx":
            link.receive_data(data.draw(special_bytes), now)
        elif step == "poll":
            link.poll(now)
        elif not link.awaiting_ack:
            link.send(data.draw(payloads(name, 16)), now)
        if step == "poll":  # whatever was due has fired
            deadline = link.next_deadline()
            assert deadline is None or deadline > now
        assert link.framer.buffered <= SMALL_MAX + SLACK


@given(payload=st.binary(min_size=1, max_size=200).filter(lambda b: not set(b) & {2, 3, 0x17}),
       block_size=st.integers(1, 50), refusals=st.integers(0, 3))
def test_a_multi_block_message_survives_busy_naks_of_its_closing_block(
        payload: bytes, block_size: int, refusals: int) -> None:
    link = Link(StxEtxFramer(), LinkConfig(handshake=Handshake.ACK_NAK))
    *blocks, last = StxEtxFramer().frame_blocks(payload, block_size)
    for block in blocks:
        assert link.receive_data(block, now=0.0) == [SendAck(), BlockAccepted(len(block) - 3)]
    link.busy = True
    for _ in range(refusals):
        assert isinstance(link.receive_data(last, now=0.0)[0], SendNak)
    link.busy = False
    assert link.receive_data(last, now=0.0) == [SendAck(), MessageReceived(payload, Envelope())]
