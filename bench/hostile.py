"""Hostile input against a real daemon: 100,000 malformed frames over a pty and over TCP.

The gateway runs as its own process (`posgw run`, SQLite, stand-in
authorization, forwarding to a private broker) with three lines: a serial
line (`ecr-stx-lrc` on a pty pair) that this process floods, a second serial
line and a TCP listener where honest terminals keep buying all through each
flood. Phases:

1. serial: `--frames` seeded chunks on the flooded line (garbage, bad
   checks, over-long frames, unterminated frames, ETB blocks, good frames
   carrying malformed messages), then a purchase on that same line;
2. tcp: `--frames` malformed frames over four pipelining connections, each
   ended by a lost length, a short header, a truncated frame or a close;
3. sessions (bench/hostile_sessions.py, alone with `--sessions-only`): on a
   second listener with the shipped bounds, honest terminals' latency with
   no attack, with twice the connection cap in held sockets, and during a
   slowloris.

Every reply is accounted for. Over TCP the oracle (`HostileMessages`)
says which frames are owed a 30 and the answers must match it exactly. On
the serial line the flooding peer (bench/hostile_serial.py) runs the
gateway's own framer over the bytes it sends, so it knows every frame the
gateway sees and the reply each is owed: NAK, ACK, or for a message an ACK
and then a 30 where owed, or a NAK while the session is 16 messages behind.

RSS is the daemon's, read from /proc after a tenth of each flood (the heap
at its working size), halfway through the rest and at the end: flat means
the second half adds no more than noise. The honest terminals' ledger rows
and cached answers are the only state a flood may leave behind.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `python bench/hostile.py`

from bench.hostile_serial import ANSWER_TIMEOUT_S, FLOODED, AccountedSerialPeer
from bench.hostile_sessions import listener_toml, sessions_phase
from bench.readme import machine, update_readmes
from bench.soak_stack import posgw_command
from posgw.drivers.tcp_link import connect_tcp
from posgw.gateway.security.keys import generate_keys
from posgw.sandbox.mosquitto import RunningBroker, demo_broker
from posgw.sandbox.ports import free_port, port_accepts
from posgw.sandbox.processes import wait_until
from posgw.simulator import cards as demo
from posgw.simulator.cards import demo_cards
from posgw.simulator.pty_pair import PtyPair
from posgw.simulator.terminal import TerminalSimulator
from tests.e2e.harness import TCP_PROFILE, ledger_rows
from tests.security.test_hostile_input import (
    MERCHANT,
    SERIAL_PROFILE,
    TCP_WORKERS,
    HostileMessages,
    TcpTally,
    flood,
)

HONEST_SERIAL, HONEST_TCP = "S0000002", "T0000001"
HONEST_PACE_S = 0.5  # each honest terminal buys twice a second beside the flood
START_DEADLINE_S = 60.0


# --- the daemon ---------------------------------------------------------------------


def gateway_toml(workdir: Path, broker: RunningBroker, port: int, flooded: str,
                 honest: str, sessions_port: int) -> Path:
    path = workdir / "gateway.toml"
    serial = "\n".join(f"""
[[terminals]]
id = "{terminal}"
driver = "serial"
port = "{device}"
profile = "{SERIAL_PROFILE.name}"
merchant_id = "{MERCHANT}"
""" for terminal, device in ((FLOODED, flooded), (HONEST_SERIAL, honest)))
    path.write_text(f"""
[gateway]
branch_id = "BENCH"
gateway_id = "gw-hostile"
database = "sqlite:///{workdir / 'gateway.db'}"
[mqtt]
host = "{broker.host}"
port = {broker.port}
[keys]
dir = "{workdir / 'keys'}"
[upstream]
mode = "standin"
floor_limit = 100000000
[commands]
# No center in this bench: events count as delivered at the broker's PUBACK,
# which a gateway without a center key does only when the config says so.
insecure_obey_unsigned = true
[[listeners]]
bind = "127.0.0.1:{port}"
profile = "{TCP_PROFILE.name}"
allow = ["{HONEST_TCP}"]
# the floods' connections and the honest terminal all dial from 127.0.0.1
max_connections_per_address = 64
{listener_toml(sessions_port)}
{serial}""")
    return path


def flood_shares(frames: int) -> list[int]:
    """A tenth to warm up (the heap reaches its working size), then two halves."""
    warm_up = frames // 10
    half = (frames - warm_up) // 2
    return [warm_up, half, frames - warm_up - half]


def memory_line(samples: list[tuple[float, float]], frames: int, unit: str) -> str:
    """The daemon's RSS after each share of the flood, the growth after warm-up, the peak."""
    sent, points = 0, []
    for share, (rss, _) in zip(flood_shares(frames), samples, strict=True):
        sent += share
        points.append(f"{rss:.1f} MB after {sent:,}")
    growth = samples[-1][0] - samples[0][0]
    return (f"daemon RSS {', '.join(points)} {unit} ({growth:+.1f} MB after warm-up), "
            f"peak {samples[-1][1]:.1f} MB")


def memory_mb(pid: int) -> tuple[float, float]:
    """RSS and peak RSS (VmHWM) of a live process, in MB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text()
                  .splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


# --- honest terminals -------------------------------------------------------------------


@dataclass(slots=True)
class Honest:
    """Response codes heard by the honest terminals (None: no answer)."""

    codes: dict[str, list[str | None]] = field(default_factory=dict)

    async def buy_until(self, terminal: TerminalSimulator, name: str,
                        done: asyncio.Event) -> None:
        codes = self.codes.setdefault(name, [])
        while True:
            exchange = await terminal.purchase(demo.VISA_OK, 12_34)
            codes.append(exchange.response_code)
            if done.is_set():
                return
            await asyncio.sleep(HONEST_PACE_S)  # pacing, not synchronisation

    def line(self, name: str, since: int = 0) -> str:
        """"n/m answered 00" over this terminal's purchases from the `since`-th on."""
        codes = self.codes.get(name, [])[since:]
        return f"{codes.count('00')}/{len(codes)} answered 00"


async def beside(honest_terminals: list[tuple[TerminalSimulator, str]], honest: Honest,
                 work: Callable[[], Awaitable[None]]) -> None:
    """Run `work` while the honest terminals buy; each buys at least once."""
    done = asyncio.Event()
    async with asyncio.TaskGroup() as group:
        for terminal, name in honest_terminals:
            group.create_task(honest.buy_until(terminal, name, done))
        try:
            await work()
        finally:
            done.set()


# --- the phases ---------------------------------------------------------------------------


@dataclass(slots=True)
class Daemon:
    process: subprocess.Popen[bytes]
    port: int
    database: str
    sessions_port: int = 0

    def alive(self) -> bool:
        return self.process.poll() is None

    def memory(self) -> tuple[float, float]:
        return memory_mb(self.process.pid)


@dataclass(slots=True)
class Report:
    lines: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def emit(self, line: str) -> None:
        """Record a result line and show it now (each phase takes a while)."""
        self.lines.append(line)
        print(line, file=sys.stderr, flush=True)

    def check(self, ok: bool, what: str) -> None:
        if not ok:
            self.failures.append(what)


async def serial_phase(daemon: Daemon, flooded: PtyPair, frames: int, seed: int,
                       honest_terminals: list[tuple[TerminalSimulator, str]], honest: Honest,
                       report: Report) -> None:
    transport = flooded.master_transport()
    peer = AccountedSerialPeer(transport, seed)
    memory: list[tuple[float, float]] = []

    async def soak() -> None:
        for share in flood_shares(frames):
            await peer.flood(share)
            await peer.probe()  # every chunk so far handled
            memory.append(daemon.memory())

    reader = asyncio.create_task(peer.read())
    try:
        await peer.open_line()
        started = time.monotonic()
        await beside(honest_terminals, honest, soak)
        elapsed = time.monotonic() - started
    finally:
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
    async with TerminalSimulator(SERIAL_PROFILE, transport, FLOODED, MERCHANT, demo_cards(),
                                 response_timeout_s=ANSWER_TIMEOUT_S, max_repeats=0) as terminal:
        after = await terminal.purchase(demo.VISA_OK, 12_34)
    honest.codes[FLOODED] = [after.response_code]
    a = peer.account
    kinds = ", ".join(f"{kind} {count:,}" for kind, count in sorted(a.chunks.items()))
    report.emit(f"serial flood: {a.chunks.total():,} chunks in {elapsed:.0f} s ({kinds}); "
                f"{a.probes} echo probes")
    report.emit(f"serial replies: bad frames {a.bad_frames:,}, NAKed {a.naks_for_bad:,}; "
                f"ETB blocks {a.blocks:,}, ACKed {a.acks_for_blocks:,}; messages "
                f"{a.messages:,}: taken {a.taken:,}, NAKed busy {a.refused_busy:,}; "
                f"replies unaccounted {a.unaccounted}, still owed {len(peer.owed)}")
    report.emit(f"serial answers: 30 owed to {a.answers_owed:,} taken messages, heard "
                f"{dict(a.answers)}; {a.resent} sent again after the gateway's ACK timeout "
                f"(our ACK queued behind the flood)")
    report.emit(f"serial honest: other serial line {honest.line(HONEST_SERIAL)}, TCP "
                f"terminal {honest.line(HONEST_TCP)}; on the flooded line after the flood: "
                f"{after.response_code}")
    report.emit("serial memory: " + memory_line(memory, frames, "chunks"))
    report.check(a.naks_for_bad == a.bad_frames and a.acks_for_blocks == a.blocks
                 and a.taken + a.refused_busy == a.messages and a.unaccounted == 0
                 and not peer.owed, "serial: a frame did not get the reply it is owed")
    report.check(a.answers == Counter({"30": a.answers_owed}),
                 "serial: answers differ from what the oracle owes")
    report.check(after.response_code == "00", "serial: the flooded line's purchase after")
    report.check(daemon.alive(), "serial: the daemon died")


async def tcp_phase(daemon: Daemon, frames: int, seed: int,
                    honest_terminals: list[tuple[TerminalSimulator, str]], honest: Honest,
                    report: Report) -> None:
    sources = [HostileMessages(seed + worker, TCP_PROFILE, line_names_terminal=False)
               for worker in range(TCP_WORKERS)]
    tally, memory = TcpTally(), list[tuple[float, float]]()
    before = {name: len(codes) for name, codes in honest.codes.items()}

    async def soak() -> None:
        for share in flood_shares(frames):
            await flood(daemon.port, sources, share, tally)  # returns once all are answered
            memory.append(daemon.memory())

    started = time.monotonic()
    await beside(honest_terminals, honest, soak)
    elapsed = time.monotonic() - started
    report.emit(f"tcp flood: {tally.sent:,} frames on {tally.connections:,} connections in "
                f"{elapsed:.0f} s; {tally.dropped_by_gateway} dropped by the gateway after a "
                f"lost length, {tally.closed_in_sync} closed in sync")
    report.emit(f"tcp answers: 30 owed to {tally.owed:,} frames, heard {dict(tally.answers)}")
    report.emit(f"tcp honest: other TCP terminal {honest.line(HONEST_TCP, before[HONEST_TCP])}"
                f", serial line {honest.line(HONEST_SERIAL, before[HONEST_SERIAL])}")
    report.emit("tcp memory: " + memory_line(memory, frames, "frames"))
    report.check(tally.sent >= frames and tally.closed_in_sync == 0, "tcp: frames or sync")
    report.check(tally.answers == Counter({"30": tally.owed}),
                 "tcp: answers differ from what the oracle owes")
    report.check(daemon.alive(), "tcp: the daemon died")


async def run(args: argparse.Namespace) -> Report:
    report, honest = Report(), Honest()
    workdir = Path(tempfile.mkdtemp(prefix="posgw-hostile-"))
    try:
        async with demo_broker(workdir) as broker, PtyPair() as flooded, PtyPair() as other:
            report.emit(f"machine: {machine()}; broker: {broker.kind}")
            generate_keys(workdir / "keys")
            port, sessions_port = free_port(), free_port()
            config = gateway_toml(workdir, broker, port, flooded.port, other.port,
                                  sessions_port)
            with (workdir / "gateway.log").open("wb") as log:
                process = subprocess.Popen(
                    [posgw_command(), "run", "-c", str(config), "--log-level", "warning"],
                    stdout=log, stderr=log)
            daemon = Daemon(process, port, f"sqlite:///{workdir / 'gateway.db'}",
                            sessions_port)
            try:
                await asyncio.to_thread(
                    wait_until, lambda: port_accepts(port) and port_accepts(sessions_port),
                    "the gateway", START_DEADLINE_S, process)
                await phases(daemon, flooded, other, args, honest, report)
                alive = daemon.alive()
            finally:
                process.send_signal(signal.SIGTERM)
                exit_code = await asyncio.to_thread(process.wait, 60)
        rows = Counter(row.terminal_id for row in ledger_rows(daemon.database)
                       if row.terminal_id in honest.codes)  # the sessions phase: its own
        answered = Counter({name: sum(code is not None for code in codes)
                            for name, codes in honest.codes.items()})
        report.emit(f"daemon: {'running' if alive else 'GONE'} after the attacks, SIGTERM exit "
                    f"code {exit_code}; ledger rows {dict(sorted(rows.items()))} = honest "
                    f"purchases answered {dict(sorted(answered.items()))}")
        report.check(exit_code == 0, "the daemon's exit code")
        report.check(rows == answered, "the ledger holds other than the honest rows")
        report.check(all(set(codes) == {"00"} for codes in honest.codes.values()),
                     "an honest terminal heard other than 00")
    except BaseException:
        print(f"workdir kept: {workdir}", file=sys.stderr)
        raise
    if report.failures:
        print(f"workdir kept: {workdir}", file=sys.stderr)
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return report


async def phases(daemon: Daemon, flooded: PtyPair, other: PtyPair, args: argparse.Namespace,
                 honest: Honest, report: Report) -> None:
    if not args.sessions_only:
        await floods(daemon, flooded, other, args, honest, report)
    await sessions_phase(daemon.sessions_port, report.emit, report.check)


async def floods(daemon: Daemon, flooded: PtyPair, other: PtyPair, args: argparse.Namespace,
                 honest: Honest, report: Report) -> None:
    cards = demo_cards()
    tcp_line = await connect_tcp("127.0.0.1", daemon.port)
    async with (TerminalSimulator(TCP_PROFILE, tcp_line, HONEST_TCP, MERCHANT, cards,
                                  response_timeout_s=ANSWER_TIMEOUT_S, max_repeats=0) as tcp,
                TerminalSimulator(SERIAL_PROFILE, other.master_transport(), HONEST_SERIAL,
                                  MERCHANT, cards, response_timeout_s=ANSWER_TIMEOUT_S,
                                  max_repeats=0) as serial):
        honest_terminals = [(serial, HONEST_SERIAL), (tcp, HONEST_TCP)]
        await serial_phase(daemon, flooded, args.frames, args.seed, honest_terminals, honest,
                           report)
        await tcp_phase(daemon, args.frames, args.seed, honest_terminals, honest, report)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=100_000, help="per link")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--sessions-only", action="store_true",
                        help="only the held-sockets and slowloris phase")
    parser.add_argument("--update-readme", action="store_true")
    args = parser.parse_args()
    report = asyncio.run(run(args))
    unharmed = ("honest terminals answered through held sockets and a slowloris"
                if args.sessions_only else "every frame answered or NAKed as the profile says; "
                "honest terminals unharmed by floods, held sockets and a slowloris")
    verdict = unharmed if not report.failures else "FAILED: " + "; ".join(report.failures)
    report.lines.append(f"verdict: {verdict}")
    text = "".join(line + "\n" for line in report.lines)
    print(text, end="")
    if report.failures:
        sys.exit(1)
    if args.update_readme:
        if args.sessions_only:  # a block of its own, beside the floods' one
            update_readmes("hostile-sessions", "python bench/hostile.py --sessions-only", text)
            return
        command = "python bench/hostile.py" + (
            f" --frames {args.frames}" if args.frames != 100_000 else "")
        update_readmes("hostile", command, text)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
