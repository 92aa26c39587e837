"""Write a benchmark's output into the documentation between its markers.

`<!-- bench:NAME -->` ... `<!-- /bench:NAME -->` in docs/performance.md,
bench/README.md and the guides that quote a bench; figures in the docs are
only ever written by this.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: The pages that show every bench's output: the docs' performance page, and
#: the benches' own README beside the commands that produce it.
BENCH_PAGES = (ROOT / "docs" / "performance.md", ROOT / "bench" / "README.md")
#: Guides that quote a bench's output where their readers need it (the
#: console's page, its search figures): written with the others.
GUIDE_PAGES = (ROOT / "docs" / "console.md",)


def bench_block(name: str, command: str, report: str) -> str:
    """The marked block: the command and its output as one fenced block."""
    return f"<!-- bench:{name} -->\n```\n$ {command}\n{report}```\n<!-- /bench:{name} -->"


def replace_block(text: str, name: str, block: str) -> str | None:
    """`text` with NAME's block replaced; None when it has no such markers."""
    start_marker, end_marker = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    start = text.find(start_marker)
    end = text.find(end_marker, start)
    if start < 0 or end < 0:
        return None
    return text[:start] + block + text[end + len(end_marker):]


def update_readmes(name: str, command: str, report: str,
                   pages: Sequence[Path] = BENCH_PAGES + GUIDE_PAGES) -> list[Path]:
    """Write NAME's block into every page that has its markers; the pages written."""
    block = bench_block(name, command, report)
    written = []
    for page in pages:
        updated = replace_block(page.read_text(encoding="utf-8"), name, block)
        if updated is not None:
            page.write_text(updated, encoding="utf-8")
            written.append(page)
    return written


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
