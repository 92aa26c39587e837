"""STX/ETX/LRC with ACK/NAK over a real pty pair, pyserial on both ends."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from posgw.drivers.backoff import Backoff
from posgw.drivers.base import Transport
from posgw.drivers.channel import FramedChannel
from posgw.drivers.discovery import DiscoveredTerminal, discover
from posgw.drivers.hotplug import HotplugMonitor, TerminalLinkSupervisor
from posgw.drivers.serial_link import SerialSettings, open_serial
from posgw.gateway.profiles import load_profile
from posgw.protocols.framing import Event, FrameRejected, GarbageSkipped, Link, build_link
from posgw.protocols.iso8583.message import Message
from posgw.simulator.pty_pair import PtyPair, pty_supported
from posgw.simulator.usb_emulation import EmulatedUsbDevice
from tests.drivers.helpers import async_test, codec_for, purchase, read_exactly, wait_until

pytestmark = pytest.mark.skipif(not pty_supported(), reason="needs /dev/ptmx (POSIX pty)")

PROFILE = "ecr-stx-lrc"
ACK, NAK = b"\x06", b"\x15"


def new_link() -> Link:
    return build_link(load_profile(PROFILE).framing)


def settings() -> SerialSettings:
    return SerialSettings.from_spec(load_profile(PROFILE).transport)


def framed(message: bytes) -> bytes:
    """STX message ETX LRC, as the terminal puts it on the line."""
    return new_link().framer.frame(message)


def corrupted(frame: bytes) -> bytes:
    return frame[:-1] + bytes((frame[-1] ^ 0xFF,))  # wrong LRC


def test_settings_take_profile_defaults_and_terminal_overrides() -> None:
    spec = load_profile(PROFILE).transport
    assert SerialSettings.from_spec(spec) == SerialSettings(9600, 8, "N", 1, "none")
    assert SerialSettings.from_spec(spec, baud=19200, parity="E", bytesize=7).parity == "E"
    with pytest.raises(ValueError, match="speed"):
        SerialSettings.from_spec(spec, speed=1)


@async_test()
async def test_purchase_crosses_pty_with_ack_both_ways() -> None:
    codec = codec_for(PROFILE)
    async with PtyPair() as pair:
        gateway_line = await open_serial(pair.port, settings())
        async with (
            FramedChannel(gateway_line, new_link()) as gateway,
            FramedChannel(pair.master_transport(), new_link()) as terminal,
        ):
            assert await terminal.send(codec.encode(purchase()))  # gateway ACKed
            request = codec.decode((await gateway.receive()).message)
            assert request.fields == purchase().fields
            reply = Message("0210", {11: request.text(11), 39: "00"})
            assert await gateway.send(codec.encode(reply))  # terminal ACKed
            assert codec.decode((await terminal.receive()).message).text(39) == "00"


@async_test()
async def test_nak_after_corrupted_frame_then_accepts_resend() -> None:
    message = codec_for(PROFILE).encode(purchase())
    events: list[Event] = []
    async with PtyPair() as pair:
        gateway_line = await open_serial(pair.port, settings())
        async with FramedChannel(gateway_line, new_link(), on_event=events.append) as gateway:
            terminal = pair.master_transport()
            await terminal.write(corrupted(framed(message)))
            assert await read_exactly(terminal, 1) == NAK
            await terminal.write(framed(message))
            assert await read_exactly(terminal, 1) == ACK
            assert (await gateway.receive()).message == message
    assert any(isinstance(e, FrameRejected) for e in events)


@async_test()
async def test_gateway_retransmits_its_frame_after_terminal_naks() -> None:
    message = codec_for(PROFILE).encode(Message("0210", {11: "000123", 39: "00"}))
    frame = framed(message)
    async with PtyPair() as pair:
        gateway_line = await open_serial(pair.port, settings())
        async with FramedChannel(gateway_line, new_link()) as gateway:
            terminal = pair.master_transport()
            async with asyncio.TaskGroup() as group:
                sending = group.create_task(gateway.send(message))
                assert await read_exactly(terminal, len(frame)) == frame
                await terminal.write(NAK)
                assert await read_exactly(terminal, len(frame)) == frame  # the resend
                await terminal.write(ACK)
            assert sending.result() is True


@async_test()
async def test_garbage_before_stx_is_skipped() -> None:
    message = codec_for(PROFILE).encode(purchase())
    events: list[Event] = []
    async with PtyPair() as pair:
        gateway_line = await open_serial(pair.port, settings())
        async with FramedChannel(gateway_line, new_link(), on_event=events.append) as gateway:
            terminal = pair.master_transport()
            await terminal.write(bytes.fromhex("00 FF 41 42 0D 0A") + framed(message))
            assert (await gateway.receive()).message == message
            assert await read_exactly(terminal, 1) == ACK
    assert sum(e.count for e in events if isinstance(e, GarbageSkipped)) == 6


@async_test()
async def test_overlong_frame_is_naked_and_the_serial_line_stays_open() -> None:
    message = codec_for(PROFILE).encode(purchase())
    events: list[Event] = []
    async with PtyPair() as pair:
        gateway_line = await open_serial(pair.port, settings())
        async with FramedChannel(gateway_line, new_link(), on_event=events.append) as gateway:
            terminal = pair.master_transport()
            await terminal.write(b"\x02" + b"A" * 9000 + b"\x03\x00")  # over max_frame 8192
            await wait_until(lambda: any(isinstance(e, FrameRejected) for e in events))
            await terminal.write(framed(message))
            assert (await gateway.receive()).message == message
            assert not gateway.closed


@async_test(timeout=20)
async def test_supervisor_reports_offline_then_online_across_pty_replug(tmp_path: Path) -> None:
    codec, events = codec_for(PROFILE), []
    received: asyncio.Queue[bytes] = asyncio.Queue()

    async def session(line: Transport) -> None:
        async with FramedChannel(line, new_link()) as gateway:
            while True:
                await received.put((await gateway.receive()).message)

    async with PtyPair(tmp_path / "ttyTERMINAL") as pair:
        supervisor = TerminalLinkSupervisor(
            "T0002", lambda: open_serial(pair.port, settings()), session,
            on_online=lambda n: events.append("online"),
            on_offline=lambda n: events.append("offline"),
            backoff=Backoff(base=0.01, cap=0.05))
        async with asyncio.TaskGroup() as group:
            task = group.create_task(supervisor.run())
            await wait_until(lambda: supervisor.online)
            async with FramedChannel(pair.master_transport(), new_link()) as terminal:
                assert await terminal.send(codec.encode(purchase("000001")))
            assert codec.decode(await received.get()).text(11) == "000001"
            await pair.unplug()
            await wait_until(lambda: events == ["online", "offline"])
            await pair.replug()
            await wait_until(lambda: supervisor.online)
            async with FramedChannel(pair.master_transport(), new_link()) as terminal:
                assert await terminal.send(codec.encode(purchase("000002")))
            assert codec.decode(await received.get()).text(11) == "000002"
            task.cancel()
    assert events == ["online", "offline", "online", "offline"]


@async_test()
async def test_hotplug_monitor_reports_attach_and_detach() -> None:
    device = EmulatedUsbDevice(0x0B00, 0x0054, "SN9")
    profiles = [load_profile("unionpay-tpdu")]

    async def scan() -> list[DiscoveredTerminal]:
        return await asyncio.to_thread(discover, profiles, usb_backend=device.backend,
                                       comports=list)

    async with HotplugMonitor(scan, interval=0.01) as monitor:
        attached = await monitor.next_change()
        device.unplug()
        detached = await monitor.next_change()
    assert (attached.kind, detached.kind) == ("attached", "detached")
    assert attached.terminal.identity.key == "usb:0b00:0054:SN9"
