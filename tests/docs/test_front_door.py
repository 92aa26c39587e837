"""README.md is the front door: short, two quick-start commands, a
"where things live" table that matches the tree, links that resolve."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
QUICK_START = (
    "python3 -m venv .venv && .venv/bin/pip install -q . && .venv/bin/posgw demo",
    "python3 -m venv .venv && .venv/bin/pip install -q -e '.[test]' && .venv/bin/pytest",
)


def section(title: str) -> str:
    return README.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_readme_stays_a_front_door() -> None:
    assert len(README.splitlines()) <= 200


def test_quick_start_is_exactly_the_two_commands_ci_runs() -> None:
    block = re.search(r"```sh\n(.*?)```", section("Quick start"), re.S).group(1)  # type: ignore[union-attr]
    assert tuple(block.splitlines()) == QUICK_START
    assert QUICK_START[1].split("&& ", 1)[1] in (ROOT / ".ci" / "run").read_text()


def test_where_things_live_names_every_top_level_folder_and_only_those() -> None:
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.splitlines()
    folders = {path.split("/", 1)[0] for path in tracked if "/" in path and not
               path.startswith(".")}
    rows = re.findall(r"^\| `([^`/]+)/` \|", section("Where things live"), re.M)
    assert len(rows) == len(set(rows))
    assert set(rows) == folders


def test_every_relative_link_in_the_readme_resolves() -> None:
    targets = re.findall(r"\]\((?!https?://)([^)#]+)(?:#[^)]*)?\)", README)
    assert targets
    missing = [target for target in targets if not (ROOT / target).exists()]
    assert missing == []
