"""The link: ACK/NAK, ENQ/EOT, retransmission limits and the three timeouts."""

from __future__ import annotations

import pytest

from posgw.protocols.framing import (
    BlockAccepted,
    ControlReceived,
    Delivered,
    DeliveryFailed,
    DleFramer,
    Envelope,
    FrameRejected,
    FramingError,
    Handshake,
    LengthHeader,
    LengthPrefixedFramer,
    Link,
    LinkConfig,
    MessageReceived,
    PartialFrameDropped,
    ResponseTimeout,
    Retransmit,
    SendAck,
    SendNak,
    StxEtxFramer,
    Tpdu,
    Write,
    wire_bytes,
)

ACK, NAK, ENQ, EOT = b"\x06", b"\x15", b"\x05", b"\x04"
GOOD = bytes.fromhex("02 414243 03 43")  # STX "ABC" ETX LRC
BAD_LRC = bytes.fromhex("02 414243 03 44")


def ecr_link(handshake: Handshake = Handshake.ACK_NAK, max_retransmits: int = 3) -> Link:
    config = LinkConfig(handshake=handshake, max_retransmits=max_retransmits)
    return Link(StxEtxFramer(), config)


# --- receiving ---------------------------------------------------------------


def test_good_frame_is_acked_then_delivered_as_message() -> None:
    events = ecr_link().receive_data(GOOD, now=0.0)
    assert events == [SendAck(), MessageReceived(b"ABC", Envelope())]
    assert wire_bytes(events) == ACK


def test_nak_after_bad_lrc_then_accepts_resend() -> None:
    link = ecr_link()
    assert link.receive_data(BAD_LRC, now=0.0) == [SendNak(), FrameRejected("check mismatch", 3)]
    assert link.receive_data(GOOD, now=0.5) == [SendAck(), MessageReceived(b"ABC", Envelope())]


def test_duplicate_frame_after_lost_ack_is_delivered_again() -> None:
    # our ACK was lost, so the terminal resends: the link reports it again (the
    # gateway deduplicates on terminal, STAN and date)
    link = ecr_link()
    first = link.receive_data(GOOD, now=0.0)
    second = link.receive_data(GOOD, now=3.0)
    assert first == second == [SendAck(), MessageReceived(b"ABC", Envelope())]


def test_message_carries_its_envelope_and_the_reply_swaps_the_tpdu() -> None:
    framer = LengthPrefixedFramer(LengthHeader.BINARY2)
    link = Link(framer, LinkConfig(has_tpdu=True, header_len=6))
    wire = bytes.fromhex("00 0D  60 0003 0000  603100311001  0800")  # length 13, TPDU, header, MTI
    [received] = link.receive_data(wire, now=0.0)
    assert isinstance(received, MessageReceived)
    assert received.message == bytes.fromhex("0800")
    reply = link.send(bytes.fromhex("0810"), now=0.1, envelope=received.envelope.reply())
    assert wire_bytes(reply) == bytes.fromhex("00 0D  60 0000 0003  603100311001  0810")


def test_frame_too_short_for_its_envelope_is_acked_and_rejected() -> None:
    link = Link(StxEtxFramer(), LinkConfig(handshake=Handshake.ACK_NAK, has_tpdu=True))
    events = link.receive_data(GOOD, now=0.0)
    assert events == [
        SendAck(),
        FrameRejected("frame of 3 bytes is shorter than its 5-byte envelope", 3),
    ]


def test_etb_blocks_are_acked_one_by_one() -> None:
    link = ecr_link()
    first, last = StxEtxFramer().frame_blocks(b"HELLO!", 3)
    assert link.receive_data(first, now=0.0) == [SendAck(), BlockAccepted(3)]
    assert link.receive_data(last, now=0.1) == [
        SendAck(),
        MessageReceived(b"HELLO!", Envelope()),
    ]


def test_a_busy_nak_of_the_closing_block_keeps_the_blocks_before_it() -> None:
    link = ecr_link()
    first, second, last = StxEtxFramer().frame_blocks(b"HELLO, WORLD", 4)
    link.receive_data(first + second, now=0.0)
    link.busy = True
    refused = link.receive_data(last, now=0.1)
    assert [type(event) for event in refused] == [SendNak, FrameRejected]
    assert link.framer.assembling  # the ACKed blocks wait for the closing one
    link.busy = False
    # The sender repeats what was NAKed: the closing block only.
    assert link.receive_data(last, now=0.2) == [
        SendAck(), MessageReceived(b"HELLO, WORLD", Envelope())]
    assert not link.framer.assembling


def test_held_blocks_are_not_glued_to_the_next_message_after_the_sender_gave_up() -> None:
    link = ecr_link()
    first, last = StxEtxFramer().frame_blocks(b"SALE 1000", 5)
    link.receive_data(first, now=0.0)
    link.busy = True
    for attempt in range(4):  # the sender's first try and its 3 retransmissions
        assert link.receive_data(last, now=0.1 * attempt)[0] == SendNak()
    link.busy = False
    assert link.receive_data(GOOD, now=2.0) == [SendAck(), MessageReceived(b"ABC", Envelope())]
    assert not link.framer.assembling


def test_a_sender_that_repeats_the_whole_message_after_a_busy_nak_is_read_once() -> None:
    link = ecr_link()
    blocks = StxEtxFramer().frame_blocks(b"HELLO!", 3)
    link.receive_data(blocks[0], now=0.0)
    link.busy = True
    link.receive_data(blocks[1], now=0.1)
    link.busy = False
    link.receive_data(blocks[0], now=0.2)
    assert link.receive_data(blocks[1], now=0.3) == [
        SendAck(), MessageReceived(b"HELLO!", Envelope())]


def test_a_sender_that_does_not_wait_for_the_nak_keeps_its_next_message_whole() -> None:
    link = ecr_link()
    old_first, old_last = StxEtxFramer().frame_blocks(b"AAAaaa", 3)
    new_first, new_last = StxEtxFramer().frame_blocks(b"BBBbbb", 3)
    link.receive_data(old_first, now=0.0)
    link.busy = True
    link.receive_data(old_last + new_first, now=0.1)  # one chunk: no pause for our answer
    link.busy = False
    assert link.receive_data(new_last, now=0.2) == [
        SendAck(), MessageReceived(b"BBBbbb", Envelope())]


def test_blocks_held_for_a_refused_closing_block_expire_with_the_retry_window() -> None:
    link = ecr_link()
    first, last = StxEtxFramer().frame_blocks(b"HELLO!", 3)
    link.receive_data(first, now=0.0)
    link.busy = True
    link.receive_data(last, now=1.0)
    assert link.poll(13.0) == [PartialFrameDropped(3, "multi-block message abandoned")]


def test_enq_from_the_peer_is_acked() -> None:
    link = ecr_link(Handshake.ENQ_ACK_NAK)
    assert link.receive_data(ENQ, now=0.0) == [SendAck()]
    assert link.receive_data(GOOD + EOT, now=0.1) == [
        SendAck(),
        MessageReceived(b"ABC", Envelope()),
        ControlReceived(0x04),
    ]


def test_ack_with_nothing_pending_is_passed_through() -> None:
    assert ecr_link().receive_data(ACK, now=0.0) == [ControlReceived(0x06)]


def test_no_handshake_means_no_ack_and_no_nak() -> None:
    link = ecr_link(Handshake.NONE)
    assert link.receive_data(GOOD, now=0.0) == [MessageReceived(b"ABC", Envelope())]
    assert link.receive_data(BAD_LRC, now=0.1) == [FrameRejected("check mismatch", 3)]


# --- sending -----------------------------------------------------------------


def test_send_waits_for_ack_then_reports_delivered() -> None:
    link = ecr_link()
    assert link.send(b"ABC", now=0.0) == [Write(GOOD)]
    assert link.awaiting_ack
    assert link.receive_data(ACK, now=0.2) == [Delivered()]
    assert not link.awaiting_ack


def test_nak_triggers_a_retransmission() -> None:
    link = ecr_link()
    link.send(b"ABC", now=0.0)
    assert link.receive_data(NAK, now=0.2) == [Retransmit(GOOD, 1, "NAK")]
    assert link.receive_data(ACK, now=0.4) == [Delivered()]


def test_ack_timeout_retransmits_at_most_three_times_then_delivery_fails() -> None:
    link = ecr_link()
    link.send(b"ABC", now=0.0)
    assert link.poll(2.9) == []
    assert link.poll(3.0) == [Retransmit(GOOD, 1, "ACK timeout")]
    assert link.poll(6.0) == [Retransmit(GOOD, 2, "ACK timeout")]
    assert link.poll(9.0) == [Retransmit(GOOD, 3, "ACK timeout")]
    assert link.poll(12.0) == [DeliveryFailed("ACK timeout", attempts=4)]
    assert link.poll(100.0) == []
    assert link.next_deadline() is None


def test_repeated_nak_fails_after_max_retransmits() -> None:
    link = ecr_link(max_retransmits=1)
    link.send(b"ABC", now=0.0)
    assert link.receive_data(NAK, now=0.1) == [Retransmit(GOOD, 1, "NAK")]
    assert link.receive_data(NAK, now=0.2) == [DeliveryFailed("NAK", attempts=2)]


def test_no_retransmission_after_ack_even_without_a_response() -> None:
    link = ecr_link()
    link.send(b"ABC", now=0.0)
    link.receive_data(ACK, now=0.1)
    link.expect_response(now=0.1)
    polled = [event for t in (3.0, 6.0, 30.0, 60.0, 60.1, 500.0) for event in link.poll(t)]
    assert polled == [ResponseTimeout()]  # and never a Write


def test_enq_handshake_sends_enq_then_frame_then_eot() -> None:
    link = ecr_link(Handshake.ENQ_ACK_NAK)
    assert link.send(b"ABC", now=0.0) == [Write(ENQ)]
    assert link.receive_data(ACK, now=0.1) == [Write(GOOD)]
    assert link.receive_data(ACK, now=0.2) == [Write(EOT), Delivered()]


def test_unanswered_enq_is_repeated_then_fails_with_eot() -> None:
    link = ecr_link(Handshake.ENQ_ACK_NAK, max_retransmits=1)
    link.send(b"ABC", now=0.0)
    assert link.poll(3.0) == [Retransmit(ENQ, 1, "ACK timeout")]
    assert link.poll(6.0) == [Write(EOT), DeliveryFailed("ACK timeout", attempts=2)]


def test_send_while_awaiting_ack_raises() -> None:
    link = ecr_link()
    link.send(b"ABC", now=0.0)
    with pytest.raises(FramingError):
        link.send(b"DEF", now=0.1)


def test_send_with_an_envelope_the_profile_lacks_raises() -> None:
    link = ecr_link()
    with pytest.raises(FramingError):
        link.send(b"ABC", now=0.0, envelope=Envelope(Tpdu(destination=1, source=2)))


def test_length_prefixed_link_delivers_at_once() -> None:
    link = Link(LengthPrefixedFramer(LengthHeader.ASCII4))
    assert link.send(b"0800", now=0.0) == [Write(b"00040800"), Delivered()]
    assert link.next_deadline() is None


# --- timers ------------------------------------------------------------------


def test_partial_frame_is_dropped_after_the_inter_byte_timeout() -> None:
    link = ecr_link()
    link.receive_data(GOOD[:3], now=0.0)
    assert link.next_deadline() == pytest.approx(0.2)
    assert link.poll(0.19) == []
    assert link.poll(0.2) == [PartialFrameDropped(2, "inter-byte timeout")]
    assert link.next_deadline() is None


def test_stale_partial_frame_is_dropped_when_late_bytes_arrive() -> None:
    link = ecr_link()
    link.receive_data(GOOD[:3], now=0.0)
    # the caller never polled; the rest arrives 1 s later and is garbage on its own
    events = link.receive_data(GOOD[3:] + GOOD, now=1.0)
    assert events[0] == PartialFrameDropped(2, "inter-byte timeout")
    assert events[-2:] == [SendAck(), MessageReceived(b"ABC", Envelope())]


def test_slow_but_steady_bytes_are_not_dropped() -> None:
    link = ecr_link()
    events = [e for i, byte in enumerate(GOOD) for e in link.receive_data(bytes((byte,)), i * 0.15)]
    assert events == [SendAck(), MessageReceived(b"ABC", Envelope())]


def test_response_timeout_fires_once() -> None:
    link = ecr_link()
    link.expect_response(now=10.0)
    assert link.next_deadline() == 70.0
    assert link.poll(69.9) == []
    assert link.poll(70.0) == [ResponseTimeout()]
    assert link.poll(200.0) == []


def test_response_in_time_stops_the_response_timer() -> None:
    link = ecr_link()
    link.expect_response(now=0.0)
    link.receive_data(GOOD, now=5.0)
    assert link.poll(61.0) == []
    assert link.next_deadline() is None


def test_next_deadline_is_the_earliest_timer() -> None:
    link = ecr_link()
    link.expect_response(now=0.0)  # 60.0
    link.send(b"ABC", now=1.0)  # ACK due 4.0
    link.receive_data(GOOD[:2], now=2.0)  # inter-byte due 2.2
    assert link.next_deadline() == pytest.approx(2.2)


def test_abandoned_multi_block_message_is_dropped_after_the_retry_window() -> None:
    link = ecr_link()
    first, _ = StxEtxFramer().frame_blocks(b"HELLO!", 3)
    link.receive_data(first, now=0.0)
    # the sender may retry for ACK timeout x (1 + 3 retransmits) = 12 s
    assert link.next_deadline() == 12.0
    assert link.poll(11.9) == []
    assert link.poll(12.0) == [PartialFrameDropped(3, "multi-block message abandoned")]


# --- two links talking (ZVT-style DLE framing) --------------------------------


def test_two_dle_links_exchange_a_message_with_a_lost_first_frame() -> None:
    config = LinkConfig(handshake=Handshake.ACK_NAK)
    terminal, gateway = Link(DleFramer(), config), Link(DleFramer(), config)
    payload = bytes.fromhex("06 01 10 10 03")  # holds DLE and ETX values
    first = wire_bytes(terminal.send(payload, now=0.0))
    corrupted = first[:-1] + bytes((first[-1] ^ 0xFF,))
    nak = gateway.receive_data(corrupted, now=0.1)
    assert wire_bytes(nak) == NAK
    resend = terminal.receive_data(wire_bytes(nak), now=0.2)
    assert resend == [Retransmit(first, 1, "NAK")]
    received = gateway.receive_data(wire_bytes(resend), now=0.3)
    assert received == [SendAck(), MessageReceived(payload, Envelope())]
    assert terminal.receive_data(wire_bytes(received), now=0.4) == [Delivered()]
