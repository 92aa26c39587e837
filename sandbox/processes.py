"""Child processes of a stack on one machine: await readiness, stop, read CPU time."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

#: How often a readiness check polls (a port, a log file); the deadline bounds the wait.
POLL_INTERVAL_S = 0.05


class SetupError(RuntimeError):
    """A part of the stack is missing, did not start or did not stop; the message says what."""


def wait_until(predicate: Callable[[], bool], what: str, deadline_s: float,
               process: subprocess.Popen[bytes] | None = None) -> None:
    """Poll `predicate()` until it holds; SetupError after `deadline_s` or when `process` exits."""
    deadline = time.monotonic() + deadline_s
    while not predicate():
        if process is not None and process.poll() is not None:
            raise SetupError(f"{what}: the process exited with {process.returncode}")
        if time.monotonic() > deadline:
            raise SetupError(f"{what}: not within {deadline_s:g} s")
        time.sleep(POLL_INTERVAL_S)  # polling with a deadline, not waiting a fixed time


def stop_process(process: subprocess.Popen[bytes], deadline_s: float) -> bool:
    """SIGTERM and wait; True when it exited so, False when it had to be SIGKILLed."""
    if process.poll() is not None:
        return True
    process.terminate()
    try:
        process.wait(deadline_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return False
    return True


def kill_process(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL, as a power cut or the OOM killer would: nothing runs after it."""
    process.kill()
    process.wait()


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of live process `pid` so far (all its threads).

    From /proc (Linux); None where that cannot be read.
    """
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        user_ticks, system_ticks = int(fields[11]), int(fields[12])
    except (OSError, IndexError, ValueError):
        return None
    return (user_ticks + system_ticks) / os.sysconf("SC_CLK_TCK")
