"""pyusb over an emulated device: TPDU messages, relay, unplug, discovery."""

from __future__ import annotations

import asyncio

import pytest

from posgw.drivers.backoff import Backoff
from posgw.drivers.base import LinkClosed, LinkUnavailable, Transport
from posgw.drivers.channel import FramedChannel
from posgw.drivers.discovery import discover
from posgw.drivers.hotplug import TerminalLinkSupervisor
from posgw.drivers.usb_link import backend_from_option, open_usb
from posgw.drivers.usb_relay import RelayBackend
from posgw.gateway.profiles import load_profile
from posgw.protocols.framing import Envelope, Link, Tpdu, build_link
from posgw.protocols.iso8583.message import Message
from posgw.simulator.usb_emulation import EmulatedUsbDevice, UsbRelayServer
from tests.drivers.helpers import async_test, codec_for, purchase, wait_until

PROFILE = "unionpay-tpdu"
MATCH = load_profile(PROFILE).transport.usb[0]  # Ingenico Telium 0B00:0054
TPDU = Tpdu(destination=0x0003, source=0x0000)  # to NII 003, from the terminal
HEADER = bytes.fromhex("603100311303")  # UnionPay POS header: app type, version...


def new_link() -> Link:
    return build_link(load_profile(PROFILE).framing)


def new_device() -> EmulatedUsbDevice:
    return EmulatedUsbDevice(MATCH.vid, MATCH.pid, "SN1234")


@async_test()
async def test_purchase_with_tpdu_crosses_pyusb_and_reply_swaps_it() -> None:
    codec, device = codec_for(PROFILE), new_device()
    gateway_line = await open_usb(MATCH, serial_number="SN1234", backend=device.backend)
    assert gateway_line.identity.key == "usb:0b00:0054:SN1234"
    assert not device.kernel_driver_active  # detached to claim the interface
    async with (
        FramedChannel(gateway_line, new_link()) as gateway,
        FramedChannel(device.device_transport(), new_link()) as terminal,
    ):
        assert await terminal.send(codec.encode(purchase()), Envelope(TPDU, HEADER))
        received = await gateway.receive()
        assert received.envelope == Envelope(TPDU, HEADER)
        assert codec.decode(received.message).fields == purchase().fields
        reply = codec.encode(Message("0210", {11: "000123", 39: "00"}))
        await gateway.send(reply, received.envelope.reply())
        answer = await terminal.receive()
    assert answer.envelope.tpdu == TPDU.swapped()
    assert codec.decode(answer.message).text(39) == "00"


@async_test()
async def test_open_of_absent_device_raises_link_unavailable() -> None:
    device = new_device()
    with pytest.raises(LinkUnavailable):
        await open_usb(MATCH, serial_number="OTHER", backend=device.backend)
    device.unplug()
    with pytest.raises(LinkUnavailable):
        await open_usb(MATCH, backend=device.backend)


@async_test()
async def test_unplug_ends_reads_with_link_closed() -> None:
    device = new_device()
    gateway_line = await open_usb(MATCH, backend=device.backend)
    device.unplug()
    with pytest.raises(LinkClosed):
        await gateway_line.read()
    await gateway_line.close()


@async_test()
async def test_relay_backend_finds_and_talks_to_the_device() -> None:
    device = new_device()
    async with UsbRelayServer(device) as relay:
        backend = backend_from_option(relay.option)
        assert isinstance(backend, RelayBackend)
        gateway_line = await open_usb(MATCH, serial_number="SN1234", backend=backend)
        terminal = device.device_transport()
        await gateway_line.write(b"\x00\x03abc")
        assert await terminal.read() == b"\x00\x03abc"
        await terminal.write(b"reply")
        assert await gateway_line.read() == b"reply"
        await gateway_line.close()
        backend.close()


def test_backend_option_rejects_unknown_values() -> None:
    with pytest.raises(ValueError, match="relay:HOST:PORT"):
        backend_from_option("tcp:1.2.3.4")


def test_discovery_matches_emulated_device_to_its_profile() -> None:
    profiles = [load_profile("ecr-stx-lrc"), load_profile(PROFILE)]
    found = discover(profiles, usb_backend=new_device().backend, comports=list)
    assert [(t.identity.key, t.profile, t.driver) for t in found] == [
        ("usb:0b00:0054:SN1234", PROFILE, "usb")
    ]


@async_test(timeout=20)
async def test_supervisor_reports_offline_then_online_across_usb_replug() -> None:
    device, events = new_device(), []
    echoed: asyncio.Queue[bytes] = asyncio.Queue()

    async def session(line: Transport) -> None:
        while True:
            await echoed.put(await line.read())

    supervisor = TerminalLinkSupervisor(
        "T0003", lambda: open_usb(MATCH, backend=device.backend), session,
        on_online=lambda n: events.append("online"), on_offline=lambda n: events.append("offline"),
        backoff=Backoff(base=0.01, cap=0.05))
    async with asyncio.TaskGroup() as group:
        task = group.create_task(supervisor.run())
        await wait_until(lambda: supervisor.online)
        await device.device_transport().write(b"one")
        assert await echoed.get() == b"one"
        device.unplug()
        await wait_until(lambda: events == ["online", "offline"])
        device.replug()
        await wait_until(lambda: supervisor.online)
        await device.device_transport().write(b"two")
        assert await echoed.get() == b"two"  # traffic resumes on the new handle
        task.cancel()
    assert events == ["online", "offline", "online", "offline"]
