"""The demo's broker: a private mosquitto when installed, else the embedded one."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

START_DEADLINE_S = 10.0


@dataclass(frozen=True, slots=True)
class RunningBroker:
    kind: str  # "mosquitto" or "embedded"
    host: str
    port: int


@asynccontextmanager
async def demo_broker(workdir: Path, choice: str = "auto") -> AsyncIterator[RunningBroker]:
    """`choice`: "auto" (mosquitto when installed), "mosquitto" or "embedded"."""
    binary = shutil.which("mosquitto") or shutil.which("/usr/sbin/mosquitto")
    if choice == "mosquitto" and binary is None:
        raise RuntimeError("mosquitto is not installed (try --broker embedded)")
    if binary is not None and choice != "embedded":
        async with _mosquitto(binary, workdir) as broker:
            yield broker
        return
    from posgw.sandbox.mqtt_broker import EmbeddedBroker

    async with EmbeddedBroker("127.0.0.1", 0) as embedded:
        yield RunningBroker("embedded", "127.0.0.1", embedded.port)


@asynccontextmanager
async def _mosquitto(binary: str, workdir: Path) -> AsyncIterator[RunningBroker]:
    port = _free_port()
    config = workdir / "mosquitto.conf"
    # mosquitto's default queue per client is 1000 QoS 1 messages: past it a
    # slow subscriber (the center) silently loses what the gateway saw acked.
    config.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n"
                      "persistence false\nmax_queued_messages 1000000\n")
    log = (workdir / "mosquitto.log").open("wb")
    process = subprocess.Popen([binary, "-c", str(config)], stdout=log, stderr=log)
    try:
        await _until_listening(port, process)
        yield RunningBroker("mosquitto", "127.0.0.1", port)
    finally:
        process.terminate()
        await asyncio.to_thread(process.wait, 5)
        log.close()


async def _until_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = asyncio.get_running_loop().time() + START_DEADLINE_S
    while True:
        try:
            _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if process.poll() is not None or asyncio.get_running_loop().time() > deadline:
                raise RuntimeError(f"mosquitto did not start on port {port}") from None
            await asyncio.sleep(0.02)  # polling a port with a deadline
            continue
        writer.close()
        return


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def scratch_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="posgw-demo-"))
