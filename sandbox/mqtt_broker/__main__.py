"""`python -m posgw.sandbox.mqtt_broker --port N`: the embedded broker as a process.

Prints one line, `listening on HOST:PORT`, once it accepts connections (so
`--port 0` callers learn the port), and stops cleanly on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from posgw.sandbox.mqtt_broker.broker import DEFAULT_MAX_QUEUED, BrokerConfig
from posgw.sandbox.mqtt_broker.server import EmbeddedBroker


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m posgw.sandbox.mqtt_broker",
                                     description="Embedded MQTT 5 / 3.1.1 broker (in memory).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1883, help="0 picks a free port")
    parser.add_argument("--max-queued", type=int, default=DEFAULT_MAX_QUEUED,
                        help="messages kept per offline session (default %(default)s)")
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    config = BrokerConfig(max_queued=args.max_queued)
    async with EmbeddedBroker(args.host, args.port, config) as broker:
        sys.stdout.write(f"listening on {broker.host}:{broker.port}\n")
        sys.stdout.flush()
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(serve(args))
    except OSError as exc:  # typically: the port is taken (a mosquitto on 1883?)
        sys.exit(f"cannot listen on {args.host}:{args.port}: {exc}")


if __name__ == "__main__":
    main()
