"""A device on the branch LAN against `posgw run`'s listener (issue 17, items 2, 3, 8).

Each test runs the real daemon as its own process, with the example's shape
of listener (an allow list), and attacks it over loopback TCP: made-up
terminal ids, a stand-in refund to any card, held sockets, a slowloris, an
accept() flood at the descriptor limit, thousands of echo ids.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import socket
import time
import tomllib
from pathlib import Path
from typing import Any

from sqlmodel import select

from posgw.drivers.clock import SYSTEM_CLOCK
from posgw.drivers.tcp_link import TcpTransport, connect_tcp
from posgw.gateway.profiles import load_profile
from posgw.gateway.store import LedgerEntry, Store
from posgw.gateway.store.models import OutboxEvent
from posgw.protocols.framing import FrameReceived, LengthHeader, LengthPrefixedFramer
from posgw.protocols.iso8583.codec import Codec
from posgw.sandbox.ports import free_port
from posgw.simulator import cards as demo
from posgw.simulator.cards import demo_cards
from posgw.simulator.requests import RequestBuilder
from posgw.simulator.terminal import TerminalSimulator
from tests.metrics_scrape import scrape
from tests.security.daemon import Daemon, running_daemon, stored_terminal_ids

PROFILE = load_profile("iso87-ascii")
ALLOWED, STRANGER = "T0101", "X6666666"  # T0101: in the example's allow list
EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "gateway.example.toml"
MERCHANT = "M00000000000001"
ANSWER_TIMEOUT_S = 10.0
FRAMER_MAX = PROFILE.framing.max_frame


async def terminal(daemon: Daemon, terminal_id: str,
                   source: str = "127.0.0.1") -> TerminalSimulator:
    reader, writer = await asyncio.open_connection("127.0.0.1", daemon.port,
                                                   local_addr=(source, 0))
    return TerminalSimulator(PROFILE, TcpTransport(reader, writer), terminal_id, MERCHANT,
                             demo_cards(), response_timeout_s=ANSWER_TIMEOUT_S, max_repeats=0)


def ledger(daemon: Daemon) -> list[LedgerEntry]:
    store = Store(daemon.database)
    try:
        with store.session() as session:
            return list(session.scalars(select(LedgerEntry)))
    finally:
        store.close()


def example() -> dict[str, Any]:
    return tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))


def example_listener() -> dict[str, Any]:
    """The shipped example's listener, on a port of the test's own."""
    listener = dict(example()["listeners"][0])
    del listener["bind"]
    return listener


# --- item 2 and 8: terminals prove who they are ------------------------------------------


async def test_a_made_up_terminal_id_is_refused_58_and_never_stored(tmp_path: Path) -> None:
    with running_daemon(tmp_path, example_listener()) as daemon:
        async with await terminal(daemon, STRANGER) as stranger:
            echo = await stranger.echo()
            sale = await stranger.purchase(demo.VISA_OK, 12_34)
        async with await terminal(daemon, ALLOWED) as honest:
            assert (await honest.purchase(demo.VISA_OK, 12_34)).response_code == "00"
    assert (echo.response_code, sale.response_code) == ("58", "58")
    assert stored_terminal_ids(daemon) == {ALLOWED}
    assert [row.terminal_id for row in ledger(daemon)] == [ALLOWED]
    assert f"from unknown terminal {STRANGER}" in daemon.log()


async def test_a_refund_with_a_wrong_pin_to_any_card_is_declined_in_stand_in(
        tmp_path: Path) -> None:
    """The issue's case: 4,999.99 back to a card, a wrong PIN, the example's stand-in."""
    with running_daemon(tmp_path, example_listener(), upstream=example()["upstream"]) as daemon:
        async with await terminal(daemon, STRANGER) as stranger:
            unknown = await stranger.refund(demo.VISA_OK, 4_999_99, pin="0000")
        async with await terminal(daemon, ALLOWED) as allowed:
            known = await allowed.refund(demo.VISA_OK, 4_999_99, pin="0000")
    assert (unknown.response_code, known.response_code) == ("58", "58")
    rows = ledger(daemon)  # the allowed terminal's decline is recorded and forwarded
    assert [(row.terminal_id, row.status) for row in rows] == [(ALLOWED, "declined")]


async def test_a_terminal_with_a_refund_limit_gets_refunds_up_to_it_in_stand_in(
        tmp_path: Path) -> None:
    with running_daemon(tmp_path, {"allow": [ALLOWED]},
                        upstream={"mode": "standin", "floor_limit": 500_000,
                                  "refund_limits": {ALLOWED: 200_00}}) as daemon:
        async with await terminal(daemon, ALLOWED) as allowed:
            within = await allowed.refund(demo.VISA_OK, 200_00)
            above = await allowed.refund(demo.VISA_OK, 200_01)
    assert (within.response_code, above.response_code) == ("00", "61")


async def test_three_thousand_echo_ids_register_at_most_max_terminals(tmp_path: Path) -> None:
    """Even opted in to registration, made-up ids stop at the cap: terminal rows,
    metric series and retained status messages alike."""
    metrics_port = free_port()
    with running_daemon(tmp_path, {"register_unknown": True, "max_terminals": 20},
                        metrics={"bind": f"127.0.0.1:{metrics_port}"}) as daemon:
        codes = await echoes(daemon.port, [f"E{n:07d}" for n in range(3000)])
        series = scrape(metrics_port).labelled("posgw_link_up")
    assert codes["00"] == 20 and codes["58"] == 2980
    assert len(stored_terminal_ids(daemon)) == 20
    assert len(series) == 20
    assert retained_status_rows(daemon) <= 2 * 20  # online, then offline at the stop
    refusals = daemon.log().count("has registered max_terminals")
    assert 1 <= refusals <= 3, "one line per interval, not one per refused id"


async def echoes(port: int, terminal_ids: list[str], batch: int = 100) -> dict[str, int]:
    """One echo (0800) per id, pipelined `batch` at a time; response codes counted."""
    codec, framer = Codec(PROFILE.iso8583), LengthPrefixedFramer(LengthHeader.BINARY2,
                                                                  FRAMER_MAX)
    codes: dict[str, int] = {}
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for start in range(0, len(terminal_ids), batch):
            chunk = terminal_ids[start:start + batch]
            writer.write(b"".join(
                framer.frame(codec.encode(RequestBuilder(PROFILE.iso8583, terminal_id=tid,
                                                         merchant_id=MERCHANT,
                                                         clock=SYSTEM_CLOCK).echo()))
                for tid in chunk))
            answered = 0
            while answered < len(chunk):
                data = await asyncio.wait_for(reader.read(65536), ANSWER_TIMEOUT_S)
                assert data, "the gateway closed the connection"
                for event in framer.feed(data):
                    assert isinstance(event, FrameReceived)
                    code = codec.decode(event.payload).text(39)
                    codes[code] = codes.get(code, 0) + 1
                    answered += 1
    finally:
        writer.close()
    return codes


def retained_status_rows(daemon: Daemon) -> int:
    store = Store(daemon.database)
    try:
        with store.session() as session:
            return sum(row.topic.endswith("/status") and not row.topic.endswith(
                "gateway/status") for row in session.scalars(select(OutboxEvent)))
    finally:
        store.close()


# --- item 3: bounded sessions ---------------------------------------------------------------


async def test_held_sockets_at_the_cap_leave_an_allowed_terminal_answered(
        tmp_path: Path) -> None:
    limits = {"allow": [ALLOWED], "max_connections": 16, "max_connections_per_address": 4}
    held: list[socket.socket] = []
    with running_daemon(tmp_path, limits) as daemon:
        async with await terminal(daemon, ALLOWED) as connected:
            assert (await connected.echo()).response_code == "00"
            # 8 addresses x 6 sockets: past the per-address cap and the listener's cap
            for host in range(2, 10):
                held += [hold_socket(daemon.port, f"127.0.0.{host}") for _ in range(6)]
            during = await connected.purchase(demo.VISA_OK, 10_00)
            async with await terminal(daemon, ALLOWED, source="127.0.0.42") as newcomer:
                arriving = await newcomer.purchase(demo.VISA_OK, 11_00)
        open_now = sum(still_open(sock) for sock in held)
        for sock in held:
            sock.close()
        log = daemon.log()
    assert (during.response_code, arriving.response_code) == ("00", "00"), (during, arriving)
    assert open_now <= 16, "never more held sockets than the listener's cap"
    assert "max_connections_per_address" in log and "the oldest connection" in log


def hold_socket(port: int, source: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5,
                                    source_address=(source, 0))
    sock.setblocking(False)
    return sock


def still_open(sock: socket.socket) -> bool:
    """Not closed by the gateway (no EOF or reset waiting to be read)."""
    try:
        return sock.recv(1, socket.MSG_PEEK) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False


async def test_a_slowloris_is_closed_within_the_message_timeout(tmp_path: Path) -> None:
    limits = {"allow": [ALLOWED], "message_timeout_s": 3, "inter_byte_timeout_s": 2}
    with running_daemon(tmp_path, limits) as daemon:
        reader, writer = await asyncio.open_connection("127.0.0.1", daemon.port)
        peer_port = writer.get_extra_info("sockname")[1]
        started = time.monotonic()
        writer.write((200).to_bytes(2, "big"))  # a length header, then a byte a second
        closed_after = await trickle_until_closed(reader, writer, deadline_s=20)
        async with await terminal(daemon, ALLOWED) as honest:
            assert (await honest.echo()).response_code == "00"
        log = daemon.log()
    assert closed_after is not None and closed_after - started < 3 + 2
    assert f"tcp:127.0.0.1:{peer_port} closed: a message begun 3 s ago" in log


async def trickle_until_closed(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                               deadline_s: float) -> float | None:
    """Send one byte a second until the gateway closes; when it did (None: never)."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            data = await asyncio.wait_for(reader.read(1), 1.0)  # the slowloris's pace
        except TimeoutError:
            with contextlib.suppress(OSError):
                writer.write(b"0")
            continue
        except OSError:
            return time.monotonic()
        if data == b"":
            return time.monotonic()
    return None


async def test_an_idle_socket_is_closed_after_the_idle_timeout(tmp_path: Path) -> None:
    with running_daemon(tmp_path, {"allow": [ALLOWED], "idle_timeout_s": 2}) as daemon:
        reader, writer = await asyncio.open_connection("127.0.0.1", daemon.port)
        started = time.monotonic()
        assert await asyncio.wait_for(reader.read(1), 10) == b""
        writer.close()
    assert time.monotonic() - started < 2 + 2


async def test_an_accept_flood_at_the_descriptor_limit_logs_a_bounded_number_of_lines(
        tmp_path: Path) -> None:
    """EMFILE: a few lines with counts, not a traceback per failed accept()."""
    def few_descriptors() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (96, 96))

    limits = {"allow": [ALLOWED], "max_connections": 1000,
              "max_connections_per_address": 1000}
    with running_daemon(tmp_path, limits, preexec_fn=few_descriptors) as daemon:
        async with await terminal(daemon, ALLOWED) as connected:
            held = [hold_socket(daemon.port, "127.0.0.1") for _ in range(300)]
            await asyncio.sleep(3)  # the flood's duration: accept() fails all along
            during = await connected.echo()
            for sock in held:
                sock.close()
        async with await terminal(daemon, ALLOWED) as after:  # accept() recovered
            recovered = await after.echo()
        log = daemon.log()
    accept_lines = [line for line in log.splitlines() if "accept()" in line
                    or ("Too many open files" in line and "MQTT" not in line)]
    assert 1 <= len(accept_lines) <= 3, f"{len(accept_lines)} lines: {accept_lines[:3]}"
    assert "Too many open files" in accept_lines[0] and "Traceback" not in log
    assert "the descriptor limit (96) is below" in log  # said at start, before the flood
    assert (during.response_code, recovered.response_code) == ("00", "00")


async def test_every_session_log_line_names_the_peer(tmp_path: Path) -> None:
    with running_daemon(tmp_path, {"allow": [ALLOWED]}) as daemon:
        transport = await connect_tcp("127.0.0.1", daemon.port)
        peer = f"tcp:127.0.0.1:{transport._writer.get_extra_info('sockname')[1]}"
        framer = LengthPrefixedFramer(LengthHeader.BINARY2, FRAMER_MAX)
        await transport.write(framer.frame(b"0200\xff\xfegarbage"))  # undecodable
        async with TerminalSimulator(PROFILE, transport, STRANGER, MERCHANT, demo_cards(),
                                     response_timeout_s=ANSWER_TIMEOUT_S,
                                     max_repeats=0) as stranger:
            await stranger.purchase(demo.VISA_OK, 1_00)
        log = daemon.log()
    lines = [line for line in log.splitlines()
             if "undecodable message" in line or "from unknown terminal" in line]
    assert len(lines) == 2 and all(peer in line for line in lines), lines
