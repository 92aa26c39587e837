"""The installed `posgw` console script, as tests run it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

#: The script installed beside this interpreter: the README's commands never
#: put .venv/bin on PATH.
POSGW = str(Path(sys.executable).with_name("posgw"))


def run_posgw(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """`posgw ARGS` with its output captured; skipped when no script is installed."""
    exe = POSGW if Path(POSGW).is_file() else shutil.which("posgw")
    if exe is None:
        pytest.skip("the posgw console script is not installed (pip install -e .)")
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=60, cwd=cwd)
