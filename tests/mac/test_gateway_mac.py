"""MAC verification in the running daemon, over real links: a USB terminal
(emulated device, unionpay-tpdu, retail MAC, A0) and a TCP terminal
(iso87-binary, AES-CMAC in field 128, 63). A good MAC is approved and the
answer carries a MAC that verifies; a tampered or missing MAC gets the
profile's MAC-error code, nothing is recorded, and the failure is counted."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from posgw.drivers.base import Transport
from posgw.drivers.channel import FramedChannel
from posgw.drivers.clock import SYSTEM_CLOCK
from posgw.drivers.tcp_link import connect_tcp
from posgw.gateway.config import parse_config
from posgw.gateway.daemon import Gateway
from posgw.gateway.profiles import load_profile
from posgw.gateway.security.mac_keys import generate_mac_key
from posgw.protocols.framing import build_link
from posgw.protocols.iso8583.codec import Codec
from posgw.protocols.iso8583.message import Message
from posgw.protocols.mac import MacAlgorithm, MacCheck, MacKey, check_message, sign_message
from posgw.protocols.profile import Profile
from posgw.simulator import cards as demo
from posgw.simulator.cards import demo_cards
from posgw.simulator.requests import RequestBuilder
from posgw.simulator.terminal import TerminalSimulator, default_envelope
from posgw.simulator.usb_emulation import EmulatedUsbDevice
from tests.brokers import shared_broker_port
from tests.e2e.harness import config_table, ledger_rows

USB_PROFILE, TCP_PROFILE = load_profile("unionpay-tpdu"), load_profile("iso87-binary")
USB_TERMINAL, TCP_TERMINAL, UNKEYED_TERMINAL = "T0000902", "T0000001", "T0000003"
USB_SERIAL, MERCHANT = "MAC00001", "M00000000000001"
CARD = next(card for card in demo_cards() if card.pan == demo.VISA_OK)
ANSWER_TIMEOUT_S = 10.0


@dataclass(slots=True)
class Running:
    gateway: Gateway
    device: EmulatedUsbDevice
    keys: dict[str, MacKey]
    database: str

    async def tcp(self) -> Transport:
        return await connect_tcp("127.0.0.1", self.gateway.listener_ports[0])

    def usb(self) -> Transport:
        return self.device.device_transport()

    def rows_of(self, terminal_id: str) -> list[tuple[str, str]]:
        return [(row.stan, row.status) for row in ledger_rows(self.database)
                if row.terminal_id == terminal_id]


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    table = config_table(tmp_path, shared_broker_port())  # also writes the gateway's keys
    table["listeners"] = [{"bind": "127.0.0.1:0", "profile": TCP_PROFILE.name,
                           "allow": [TCP_TERMINAL, UNKEYED_TERMINAL]}]
    table["terminals"] = [{"id": USB_TERMINAL, "driver": "usb", "usb": "0b00:0054",
                           "profile": USB_PROFILE.name, "serial_number": USB_SERIAL,
                           "merchant_id": MERCHANT}]
    now = SYSTEM_CLOCK.utc_now()
    keys = {terminal: generate_mac_key(tmp_path / "keys", terminal, algorithm, now).current
            for terminal, algorithm in ((USB_TERMINAL, MacAlgorithm.RETAIL),
                                        (TCP_TERMINAL, MacAlgorithm.AES_CMAC))}
    match = USB_PROFILE.transport.usb[0]
    device = EmulatedUsbDevice(match.vid, match.pid, USB_SERIAL)
    gateway, stop = Gateway(parse_config(table, "(mac)"), usb_backend=device.backend), \
        asyncio.Event()
    run = asyncio.create_task(gateway.run(stop))
    try:
        await asyncio.wait_for(gateway.ready.wait(), 30)
        yield Running(gateway, device, keys, table["gateway"]["database"])
    finally:
        stop.set()
        await run


def simulator(profile: Profile, transport: Transport, terminal_id: str,
              key: MacKey | None) -> TerminalSimulator:
    return TerminalSimulator(profile, transport, terminal_id, MERCHANT, [CARD],
                             response_timeout_s=ANSWER_TIMEOUT_S, max_repeats=0, mac_key=key)


async def raw_exchange(profile: Profile, transport: Transport, request: bytes) -> Message:
    """Send `request` as it is (no MAC computed here) and decode the answer."""
    async with FramedChannel(transport, build_link(profile.framing)) as channel:
        await channel.send(request, default_envelope(profile))
        received = await asyncio.wait_for(channel.receive(), ANSWER_TIMEOUT_S)
    return Codec(profile.iso8583).decode(received.message)


def tampered_purchase(profile: Profile, terminal_id: str, key: MacKey) -> tuple[str, bytes]:
    """A purchase MACed over 12.50 whose amount then became 9,999.99 (the old MAC kept)."""
    assert profile.mac is not None
    codec = Codec(profile.iso8583)
    builder = RequestBuilder(profile.iso8583, terminal_id=terminal_id, merchant_id=MERCHANT,
                             clock=SYSTEM_CLOCK)
    signed = codec.decode(sign_message(codec, builder.purchase(CARD, 12_50), profile.mac, key))
    signed.fields[4] = f"{999_999:012d}"
    return signed.text(11), codec.encode(signed)


def unsigned_purchase(profile: Profile, terminal_id: str) -> tuple[str, bytes]:
    builder = RequestBuilder(profile.iso8583, terminal_id=terminal_id, merchant_id=MERCHANT,
                             clock=SYSTEM_CLOCK)
    request = builder.purchase(CARD, 12_50)
    return request.text(11), Codec(profile.iso8583).encode(request)


# --- USB, unionpay-tpdu, retail MAC in field 64 ---------------------------------------


async def test_usb_terminal_with_a_good_mac_is_approved_and_its_answer_is_maced(
        running: Running) -> None:
    async with simulator(USB_PROFILE, running.usb(), USB_TERMINAL,
                         running.keys[USB_TERMINAL]) as terminal:
        exchange = await terminal.purchase(CARD.pan, 12_50)
    assert (exchange.response_code, exchange.response_mac) == ("00", MacCheck.VALID)
    assert running.rows_of(USB_TERMINAL) == [(exchange.stan, "settled")]
    assert running.gateway.macs.total_failures == 0


async def test_usb_terminal_with_a_tampered_amount_gets_a0_and_nothing_is_recorded(
        running: Running, caplog: pytest.LogCaptureFixture) -> None:
    key = running.keys[USB_TERMINAL]
    stan, request = tampered_purchase(USB_PROFILE, USB_TERMINAL, key)
    with caplog.at_level(logging.WARNING, logger="posgw.gateway.sessions"):
        answer = await raw_exchange(USB_PROFILE, running.usb(), request)
    assert (answer.mti, answer.text(11), answer.text(39)) == ("0210", stan, "A0")
    assert 64 not in answer.fields  # the error answer carries no MAC
    assert running.rows_of(USB_TERMINAL) == []
    assert running.gateway.macs.failures == {USB_TERMINAL: 1}
    assert f"MAC refused: terminal {USB_TERMINAL}, 0200 STAN {stan}" in caplog.text
    for secret in (request[-8:].hex(), key.key.hex(), CARD.pan):  # the MAC, the key, the PAN
        assert secret.upper() not in caplog.text.upper()


async def test_usb_terminal_without_a_mac_is_refused(running: Running) -> None:
    stan, request = unsigned_purchase(USB_PROFILE, USB_TERMINAL)
    answer = await raw_exchange(USB_PROFILE, running.usb(), request)
    assert (answer.text(11), answer.text(39)) == (stan, "A0")
    assert running.rows_of(USB_TERMINAL) == []
    assert running.gateway.macs.failures == {USB_TERMINAL: 1}


# --- TCP, iso87-binary, AES-CMAC in field 128 -------------------------------------------


async def test_tcp_terminal_with_a_good_cmac_is_approved_and_its_answer_is_maced(
        running: Running) -> None:
    async with simulator(TCP_PROFILE, await running.tcp(), TCP_TERMINAL,
                         running.keys[TCP_TERMINAL]) as terminal:
        exchange = await terminal.purchase(CARD.pan, 12_50)
        retransmitted = await terminal.send_again()  # the stored answer, MACed again
    assert (exchange.response_code, exchange.response_mac) == ("00", MacCheck.VALID)
    assert (retransmitted.response_code, retransmitted.response_mac) == ("00", MacCheck.VALID)
    assert running.rows_of(TCP_TERMINAL) == [(exchange.stan, "settled")]


async def test_tcp_terminal_with_a_tampered_amount_gets_63_and_nothing_is_recorded(
        running: Running) -> None:
    stan, request = tampered_purchase(TCP_PROFILE, TCP_TERMINAL, running.keys[TCP_TERMINAL])
    answer = await raw_exchange(TCP_PROFILE, await running.tcp(), request)
    assert (answer.mti, answer.text(11), answer.text(39)) == ("0210", stan, "63")
    assert running.rows_of(TCP_TERMINAL) == []
    assert running.gateway.macs.failures == {TCP_TERMINAL: 1}


async def test_tcp_terminal_without_a_mac_is_refused(running: Running) -> None:
    stan, request = unsigned_purchase(TCP_PROFILE, TCP_TERMINAL)
    answer = await raw_exchange(TCP_PROFILE, await running.tcp(), request)
    assert (answer.text(11), answer.text(39)) == (stan, "63")
    assert running.rows_of(TCP_TERMINAL) == []


async def test_a_terminal_without_a_key_is_served_as_before(running: Running) -> None:
    async with simulator(TCP_PROFILE, await running.tcp(), UNKEYED_TERMINAL, None) as terminal:
        exchange = await terminal.purchase(CARD.pan, 12_50)
    assert (exchange.response_code, exchange.response_mac) == ("00", "")
    assert running.rows_of(UNKEYED_TERMINAL) == [(exchange.stan, "settled")]
    assert running.gateway.macs.total_failures == 0


async def test_a_sign_on_without_a_mac_is_answered_with_one(running: Running) -> None:
    builder = RequestBuilder(TCP_PROFILE.iso8583, terminal_id=TCP_TERMINAL,
                             merchant_id=MERCHANT, clock=SYSTEM_CLOCK)
    codec = Codec(TCP_PROFILE.iso8583)
    request = codec.encode(builder.sign_on())
    async with FramedChannel(await running.tcp(), build_link(TCP_PROFILE.framing)) as channel:
        await channel.send(request, None)
        raw = (await asyncio.wait_for(channel.receive(), ANSWER_TIMEOUT_S)).message
    answer = codec.decode(raw)
    assert TCP_PROFILE.mac is not None
    assert answer.mti == "0810" and answer.text(39) == "00"
    assert check_message(raw, answer, TCP_PROFILE.mac, running.keys[TCP_TERMINAL]) \
        is MacCheck.VALID
