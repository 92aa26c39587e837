"""bench/readme.py writes each bench's output into the docs' performance page,
bench/README.md and the guides that quote it, between that bench's markers,
and nowhere else."""

from __future__ import annotations

import re
from pathlib import Path

from bench.readme import BENCH_PAGES, GUIDE_PAGES, ROOT, update_readmes

BENCHES = ("codec", "risk", "e2e", "soak", "hostile", "hostile-sessions", "center",
           "console-search", "settlement_files", "settlement")
PERFORMANCE = ROOT / "docs" / "performance.md"


def marked_names(text: str) -> list[str]:
    return re.findall(r"<!-- bench:([a-z0-9_-]+) -->", text)


def test_the_performance_page_and_the_bench_readme_hold_every_bench_once() -> None:
    assert PERFORMANCE in BENCH_PAGES
    for page in BENCH_PAGES:
        names = marked_names(page.read_text(encoding="utf-8"))
        assert sorted(names) == sorted(BENCHES), page


def test_a_guide_quotes_benches_that_exist_once_each() -> None:
    for page in GUIDE_PAGES:
        names = marked_names(page.read_text(encoding="utf-8"))
        assert names and len(set(names)) == len(names) and set(names) <= set(BENCHES), page


def test_the_front_door_readme_holds_no_bench_block() -> None:
    assert marked_names((ROOT / "README.md").read_text(encoding="utf-8")) == []


def test_every_page_shows_the_same_output_for_each_bench() -> None:
    texts = [page.read_text(encoding="utf-8") for page in BENCH_PAGES + GUIDE_PAGES]
    for name in BENCHES:
        pattern = rf"<!-- bench:{name} -->.*?<!-- /bench:{name} -->"
        blocks = {found.group(0) for text in texts if (found := re.search(pattern, text, re.S))}
        assert len(blocks) == 1, name


def test_update_replaces_only_the_named_block(tmp_path: Path) -> None:
    page = tmp_path / "performance.md"
    page.write_text("intro\n<!-- bench:codec -->\n```\nold codec\n```\n<!-- /bench:codec -->\n"
                    "middle\n<!-- bench:e2e -->\n```\nold e2e\n```\n<!-- /bench:e2e -->\nend\n",
                    encoding="utf-8")
    written = update_readmes("codec", "python bench/codec.py", "new figure\n", pages=[page])
    assert written == [page]
    assert page.read_text(encoding="utf-8") == (
        "intro\n<!-- bench:codec -->\n```\n$ python bench/codec.py\nnew figure\n```\n"
        "<!-- /bench:codec -->\nmiddle\n<!-- bench:e2e -->\n```\nold e2e\n```\n"
        "<!-- /bench:e2e -->\nend\n")


def test_a_page_without_the_markers_is_left_alone(tmp_path: Path) -> None:
    page = tmp_path / "other.md"
    page.write_text("no markers here\n", encoding="utf-8")
    assert update_readmes("soak", "python bench/soak.py", "x\n", pages=[page]) == []
    assert page.read_text(encoding="utf-8") == "no markers here\n"
