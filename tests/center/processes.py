"""Real `posgw center -c` processes for tests, and what they need around them.

A center process is started with the venv's own `posgw` script, its stderr
read by a thread (so the pipe never fills), and it counts as ready once it
logs its subscription. Stopping it with SIGTERM returns its summary counts;
SIGKILL is a crash.
"""

from __future__ import annotations

import re
import signal
import subprocess
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import aiomqtt

from posgw.gateway.security import PUBLIC_KEY_FILE
from tests.center.events import GATEWAY_ID
from tests.posgw_script import POSGW

READY_MARK = "center subscribed to"
SUMMARY = re.compile(r"stopped; ingested (\d+), duplicates (\d+), quarantined (\d+)")
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0
#: Test sessions on the shared broker should not outlive the test run by much.
SESSION_EXPIRY_S = 60


@dataclass(frozen=True, slots=True)
class Topics:
    """A topic prefix and share group of one test's own (the broker is shared)."""

    prefix: str
    group: str

    @classmethod
    def fresh(cls) -> Topics:
        tag = uuid.uuid4().hex[:8]
        return cls(f"t{tag}/v1", f"g{tag}")

    def tx(self, branch: str = "B001", terminal: str = "T0001") -> str:
        return f"{self.prefix}/{branch}/{terminal}/tx"


def write_config(path: Path, *, database: str, port: int, topics: Topics,
                 client_id: str | None, keys_dir: Path, extra_mqtt: str = "",
                 command_key: Path | None = None) -> Path:
    """`command_key`: `[center] command_key` (the private key `cmd` signs with)."""
    client_line = f'client_id = "{client_id}"\n' if client_id else ""
    key_line = f'command_key = "{command_key}"\n' if command_key else ""
    path.write_text(
        f'[center]\ndatabase = "{database}"\n{key_line}\n'
        f'[mqtt]\nport = {port}\ntopic_prefix = "{topics.prefix}"\n'
        f'share_group = "{topics.group}"\n{client_line}'
        f"session_expiry_s = {SESSION_EXPIRY_S}\n{extra_mqtt}\n"
        f'[[gateways]]\nid = "{GATEWAY_ID}"\nbranch_id = "B001"\n'
        f'public_key = "{keys_dir / PUBLIC_KEY_FILE}"\n')
    return path


class CenterProcess:
    """One `posgw center -c CONFIG [ARGS]` process."""

    def __init__(self, config: Path, args: Sequence[str] = ()) -> None:
        self.process = subprocess.Popen([POSGW, "center", "-c", str(config), *args],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                        text=True)
        self.lines: list[str] = []
        self._ready = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line.rstrip())
            if READY_MARK in line:
                self._ready.set()
        self._ready.set()  # ended: wait_ready() reports it

    def wait_ready(self, timeout: float = START_TIMEOUT_S) -> None:
        """Blocks until subscribed (call through asyncio.to_thread in async tests)."""
        if not self._ready.wait(timeout) or self.process.poll() is not None:
            raise AssertionError("center did not subscribe:\n" + "\n".join(self.lines))

    def kill(self) -> None:
        """A crash: no goodbye, no flush, nothing acknowledged after this instant."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(STOP_TIMEOUT_S)
        self._reader.join(STOP_TIMEOUT_S)

    def stop(self) -> tuple[int, int, int]:
        """SIGTERM; (ingested, duplicates, quarantined) from its summary line."""
        self.process.send_signal(signal.SIGTERM)
        status = self.process.wait(STOP_TIMEOUT_S)
        self._reader.join(STOP_TIMEOUT_S)
        summary = next((SUMMARY.search(line) for line in self.lines if SUMMARY.search(line)),
                       None)
        if status != 0 or summary is None:
            raise AssertionError(f"center exited {status}:\n" + "\n".join(self.lines))
        ingested, duplicates, quarantined = (int(group) for group in summary.groups())
        return ingested, duplicates, quarantined


@contextmanager
def center_process(config: Path, args: Sequence[str] = ()) -> Iterator[CenterProcess]:
    """A started center; killed on the way out if the test did not stop it."""
    center = CenterProcess(config, args)
    try:
        yield center
    finally:
        if center.process.poll() is None:
            center.kill()


async def publish(port: int, topic: str, messages: Sequence[bytes]) -> None:
    """QoS 1: returns once the broker has acknowledged every message."""
    async with aiomqtt.Client("127.0.0.1", port, protocol=aiomqtt.ProtocolVersion.V5) as client:
        for message in messages:
            await client.publish(topic, message, qos=1)
