"""MQTT broker throughput: QoS 1 publish -> PUBACK, mosquitto vs the embedded broker.

One aiomqtt publisher (MQTT 5) sends `--messages` QoS 1 messages of
`--size` bytes with `--window` of them in flight, and the figure is
messages PUBACKed per second, best of `--rounds`. With `--subscriber`, a
QoS 1 shared-subscription subscriber (like the center) must also have
received every message before the clock stops.

The single paho-based client is usually the bottleneck, so where the
broker is a process of its own the CPU time it spent per message (from
/proc, Linux only) is printed too: that is the broker's real cost.

    python bench/broker.py [--messages 20000] [--window 64] [--subscriber]

Brokers: mosquitto on 127.0.0.1:1883 (skipped when nothing listens there),
the embedded broker as its own process (`python -m posgw.sandbox.mqtt_broker`),
and the embedded broker in a thread of this process, as `posgw demo` runs
it (client and broker then share one interpreter and its GIL).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiomqtt

from bench.readme import machine
from posgw.sandbox.mosquitto import PrivateBroker
from posgw.sandbox.mqtt_broker import BrokerThread
from posgw.sandbox.mqtt_broker.broker import DEFAULT_MAX_QUEUED
from posgw.sandbox.ports import port_accepts
from posgw.sandbox.processes import cpu_seconds

MOSQUITTO_PORT = 1883
TOPIC = "bench/v1/B001/T0001/tx"
SHARED = "$share/bench/bench/v1/+/+/tx"
# aiomqtt warns about every publish waiting beyond ten in flight: the point here.
QUIET = logging.getLogger("bench.broker.mqtt")
QUIET.setLevel(logging.ERROR)
IDLE_S = 3.0  # a subscriber silent this long has received all it will


def mosquitto_pid() -> int | None:
    """The one running mosquitto, if there is exactly one."""
    pids = [int(p.parent.name) for p in Path("/proc").glob("[0-9]*/comm")
            if _read(p) == "mosquitto"]
    return pids[0] if len(pids) == 1 else None


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


@contextmanager
def broker_process() -> Iterator[tuple[int, int]]:
    """(port, pid) of an embedded broker running as its own process.

    Its queue bound is the embedded broker's default, as in the thread below.
    """
    with tempfile.TemporaryDirectory(prefix="posgw-bench-broker-") as workdir, \
            PrivateBroker(Path(workdir), binary=None, max_queued=DEFAULT_MAX_QUEUED) as broker:
        assert broker.process is not None
        yield broker.port, broker.process.pid


async def publish_all(port: int, count: int, size: int, window: int) -> None:
    payload = b"x" * size
    async with aiomqtt.Client("127.0.0.1", port, protocol=aiomqtt.ProtocolVersion.V5,
                              max_inflight_messages=window, logger=QUIET) as client:
        async def worker(share: int) -> None:
            for _ in range(share):
                await client.publish(TOPIC, payload, qos=1)

        shares = [count // window + (1 if n < count % window else 0) for n in range(window)]
        async with asyncio.TaskGroup() as group:
            for share in shares:
                group.create_task(worker(share))


async def receive_all(client: aiomqtt.Client, count: int) -> tuple[int, float]:
    """(messages received, perf_counter of the last); stops after IDLE_S of silence.

    A broker may drop QoS 1 messages for a subscriber that falls behind
    (mosquitto's max_queued_messages, 1000 by default): then not all arrive.
    """
    received, last = 0, time.perf_counter()
    messages = aiter(client.messages)
    while received < count:
        try:
            async with asyncio.timeout(IDLE_S):
                await anext(messages)
        except TimeoutError:
            break
        received, last = received + 1, time.perf_counter()
    return received, last


async def one_round(port: int, args: argparse.Namespace) -> tuple[float, int]:
    """(messages per second, messages delivered) for one run.

    The subscriber connects before the clock starts.
    """
    if not args.subscriber:
        started = time.perf_counter()
        await publish_all(port, args.messages, args.size, args.window)
        return args.messages / (time.perf_counter() - started), args.messages
    async with aiomqtt.Client("127.0.0.1", port, protocol=aiomqtt.ProtocolVersion.V5,
                              logger=QUIET) as subscriber:
        await subscriber.subscribe(SHARED, qos=1)
        started = time.perf_counter()
        async with asyncio.TaskGroup() as group:
            receiving = group.create_task(receive_all(subscriber, args.messages))
            group.create_task(publish_all(port, args.messages, args.size, args.window))
        received, last = receiving.result()
        return received / (last - started), received


def measure(name: str, port: int, args: argparse.Namespace, pid: int | None = None) -> None:
    """Print the best rate over the rounds, losses, and the broker's CPU per message."""
    cpu_before = None if pid is None else cpu_seconds(pid)
    rounds = [asyncio.run(one_round(port, args)) for _ in range(args.rounds)]
    cpu_after = None if pid is None else cpu_seconds(pid)
    line = f"{name:<32}: {max(rate for rate, _ in rounds):8,.0f} msg/s"
    if cpu_before is not None and cpu_after is not None:
        per_message = (cpu_after - cpu_before) / (args.messages * args.rounds) * 1e6
        line += f"   broker CPU {per_message:5.1f} us/msg"
    lost = max(args.messages - delivered for _, delivered in rounds)
    if lost:
        line += f"   LOST up to {lost} of {args.messages} per round"
    print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--size", type=int, default=512, help="payload bytes (a signed tx event "
                        "is about this size)")
    parser.add_argument("--window", type=int, default=64, help="QoS 1 messages in flight")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--subscriber", action="store_true",
                        help="also deliver every message to a QoS 1 shared subscriber")
    args = parser.parse_args()
    flow = "publish -> PUBACK" + (" + delivery to a subscriber" if args.subscriber else "")
    print(machine())
    print(f"QoS 1 {flow}: {args.messages} x {args.size} B, window {args.window}, "
          f"one aiomqtt publisher, best of {args.rounds}")
    if port_accepts(MOSQUITTO_PORT):
        measure("mosquitto (127.0.0.1:1883)", MOSQUITTO_PORT, args, mosquitto_pid())
    else:
        print(f"{'mosquitto (127.0.0.1:1883)':<32}: not running, skipped")
    with broker_process() as (port, pid):
        measure("embedded broker, own process", port, args, pid)
    with BrokerThread() as broker:
        measure("embedded broker, thread (demo)", broker.port, args)


if __name__ == "__main__":
    main()
