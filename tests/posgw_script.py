"""The installed `posgw` console script, as tests run it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

#: The script installed beside this interpreter: the README's commands never
#: put .venv/bin on PATH.
POSGW = str(Path(sys.executable).with_name("posgw"))


def run_posgw(*args: str, cwd: Path | None = None,
              timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """`posgw ARGS` with its output captured; skipped when no script is installed."""
    return subprocess.run([_script(), *args], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd)


def run_posgw_unprivileged(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """`posgw ARGS` bound by file permissions: as root (tests and CI run as
    root), without the capabilities that read and write past them, so a
    folder chmod 500 is not writable to it, as it is to the daemon's user."""
    command = [_script(), *args]
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root and setpriv (util-linux) is missing: root would "
                        "write past the permissions under test")
        command = [setpriv, "--bounding-set=-dac_override,-dac_read_search", "--", *command]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


def _script() -> str:
    exe = POSGW if Path(POSGW).is_file() else shutil.which("posgw")
    if exe is None:
        pytest.skip("the posgw console script is not installed (pip install -e .)")
    return exe
