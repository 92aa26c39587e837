"""Write a benchmark's output into the READMEs between its markers.

`<!-- bench:NAME -->` ... `<!-- /bench:NAME -->` in README.md and
bench/README.md; figures in the docs are only ever written by this.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def update_readmes(name: str, command: str, report: str) -> None:
    start_marker, end_marker = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    block = f"{start_marker}\n```\n$ {command}\n{report}```\n{end_marker}"
    for readme in (ROOT / "README.md", ROOT / "bench" / "README.md"):
        text = readme.read_text(encoding="utf-8")
        if start_marker not in text:
            continue
        start, end = text.index(start_marker), text.index(end_marker)
        readme.write_text(text[:start] + block + text[end + len(end_marker):], encoding="utf-8")


def machine() -> str:
    """CPU model, cores and Python version, as every benchmark prints them."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"
