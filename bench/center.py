"""The center's ingest rate and CPU per event, against the bare subscriber's ceiling.

One private mosquitto (posgw.sandbox.mosquitto) and one PostgreSQL
(127.0.0.1:5432, database `test`, a schema of its own, dropped after).
`--events` transaction events signed with a real gateway key are queued in
each consumer's persistent session while it is away; then the consumer
comes back and drains them, and the clock runs from the first stored event
to the last:

- a bare aiomqtt subscriber (manual PUBACK, persistent session) that does
  nothing with a message: the ceiling the broker and client allow;
- `posgw center -c` with 1 and with 2 processes (one share group), each
  verifying every signature, storing, PUBACKing and confirming.

CPU is user+system of the consumer processes over the same interval (from
/proc). It ends with the line the issue asks for:

    center: <n> events/s (1 process), <m> events/s (2), <r>x bare subscriber, <c> us cpu/event

    python bench/center.py [--events 20000] [--update-readme]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiomqtt

from bench.center_load import center_toml, publish, scratch_schema, signed_events, stored_count
from bench.readme import machine, update_readmes
from posgw.center.command_key import PRIVATE_FILE, generate_command_key
from posgw.drivers.mqtt import MqttConfig, ack, new_client
from posgw.gateway.security import PUBLIC_KEY_FILE, GatewayKeys, generate_keys, load_keys
from posgw.protocols.contract import tx_filter
from posgw.sandbox.mosquitto import PrivateBroker, mosquitto_path
from posgw.sandbox.processes import cpu_seconds

POSGW = str(Path(sys.executable).with_name("posgw"))
READY_MARK = "center subscribed to"
POLL_S = 0.01  # how often the database is counted while a center drains
DEADLINE_S = 600.0


@dataclass(frozen=True, slots=True)
class Rate:
    events_per_s: float
    cpu_us_per_event: float

    def line(self, name: str) -> str:
        return (f"{name:<34}: {self.events_per_s:8,.0f} events/s, "
                f"{self.cpu_us_per_event:6.1f} us cpu/event")


async def bare_subscriber(port: int, keys: GatewayKeys, count: int) -> Rate:
    """The ceiling: receive and PUBACK, nothing else, from a persistent session."""
    mqtt = MqttConfig(port=port, topic_prefix=f"b{uuid.uuid4().hex[:8]}/v1",
                      client_id=f"bench-bare-{uuid.uuid4().hex[:8]}")
    async with new_client(mqtt, persistent=True, manual_ack=True) as client:
        await client.subscribe(tx_filter(mqtt.topic_prefix), qos=1)
    await publish(port, mqtt.topic_prefix, signed_events(keys, count, "bare"))
    async with new_client(mqtt, persistent=True, manual_ack=True,
                          receive_maximum=1000) as client:
        messages = aiter(client.messages)
        received: aiomqtt.Message = await anext(messages)
        ack(client, received)
        started, cpu = time.perf_counter(), time.process_time()
        for _ in range(count - 1):
            received = await anext(messages)
            ack(client, received)
        elapsed, used = time.perf_counter() - started, time.process_time() - cpu
    return Rate((count - 1) / elapsed, used / (count - 1) * 1e6)


def start_center(config: Path, client_id: str) -> subprocess.Popen[str]:
    return subprocess.Popen([POSGW, "center", "-c", str(config), "--client-id", client_id],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def wait_ready(process: subprocess.Popen[str]) -> None:
    assert process.stderr is not None
    for line in process.stderr:
        if READY_MARK in line:
            return
    raise RuntimeError(f"center exited {process.wait()} before subscribing")


def stop(processes: list[subprocess.Popen[str]]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        process.communicate(timeout=30)  # also drains stderr


def drain(url: str, processes: list[subprocess.Popen[str]], count: int) -> Rate:
    """From the first stored event to the last: rate, and the processes' CPU."""
    deadline = time.monotonic() + DEADLINE_S
    first = 0
    while first == 0:
        first = stored_count(url)
        if time.monotonic() > deadline:
            raise RuntimeError("the center stored nothing")
        time.sleep(POLL_S)
    started = time.perf_counter()
    cpu_start = sum(cpu_seconds(p.pid) or 0.0 for p in processes)
    done = first
    while done < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the center stored {done} of {count}")
        time.sleep(POLL_S)
        done = stored_count(url)
    elapsed = time.perf_counter() - started
    used = sum(cpu_seconds(p.pid) or 0.0 for p in processes) - cpu_start
    return Rate((count - first) / elapsed, used / (count - first) * 1e6)


def center_run(port: int, keys: GatewayKeys, workdir: Path, count: int, processes: int) -> Rate:
    """`processes` centers on one share group; their sessions are made first,
    then the events queued for them, then they come back and drain."""
    tag = uuid.uuid4().hex[:8]
    with scratch_schema() as url:
        config = center_toml(workdir / f"center-{tag}.toml", database=url, port=port,
                             prefix=f"c{tag}/v1", public_key=workdir / "keys" / PUBLIC_KEY_FILE,
                             command_key=workdir / "hq" / PRIVATE_FILE)
        ids = [f"bench-{tag}-{n}" for n in range(processes)]
        first = [start_center(config, client_id) for client_id in ids]
        for process in first:
            wait_ready(process)
        stop(first)
        asyncio.run(publish(port, f"c{tag}/v1", signed_events(keys, count, tag)))
        running = [start_center(config, client_id) for client_id in ids]
        try:
            return drain(url, running, count)
        finally:
            stop(running)


def run(args: argparse.Namespace) -> list[str]:
    binary = mosquitto_path()
    if binary is None:
        raise SystemExit("bench/center.py needs mosquitto on PATH")
    with tempfile.TemporaryDirectory(prefix="posgw-bench-center-") as folder:
        workdir = Path(folder)
        keys = load_keys(generate_keys(workdir / "keys").parent)
        generate_command_key(workdir / "hq")
        with PrivateBroker(workdir, binary=binary, persistent=False) as broker:
            bare = asyncio.run(bare_subscriber(broker.port, keys, args.events))
            one = center_run(broker.port, keys, workdir, args.events, 1)
            two = center_run(broker.port, keys, workdir, args.events, 2)
    ratio = one.events_per_s / bare.events_per_s
    return [
        machine(),
        f"{args.events} signed tx events queued in a persistent session, then drained; "
        "mosquitto, PostgreSQL 127.0.0.1:5432",
        bare.line("bare aiomqtt subscriber"),
        one.line("center, 1 process"),
        two.line("center, 2 processes"),
        f"center CPU per event: {one.cpu_us_per_event / bare.cpu_us_per_event:.1f}x "
        "the bare subscriber's",
        f"center: {one.events_per_s:,.0f} events/s (1 process), {two.events_per_s:,.0f} "
        f"events/s (2), {ratio:.2f}x bare subscriber, {one.cpu_us_per_event:.0f} us cpu/event",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--update-readme", action="store_true",
                        help="write the output into docs/performance.md and bench/README.md")
    args = parser.parse_args()
    lines = run(args)
    print("\n".join(lines))
    if args.update_readme:
        update_readmes("center", "python bench/center.py",
                       "".join(line + "\n" for line in lines))


if __name__ == "__main__":
    main()
