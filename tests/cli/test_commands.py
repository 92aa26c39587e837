"""The command registry: every command listed without importing it, each
one importable, and `posgw terminals --help` honest about retirement."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from posgw.cli.lazy import load_command
from posgw.cli.main import COMMANDS, main

#: Modules `posgw --help` must not load: each command's own, and the heavy
#: libraries behind them.
HEAVY = ("posgw.cli.center", "posgw.cli.status", "posgw.cli.codec", "posgw.cli.simulate",
         "posgw.gateway", "posgw.center", "posgw.simulator", "sqlalchemy", "sqlmodel", "rich")


def modules_loaded_by(*args: str) -> set[str]:
    code = ("import sys; from posgw.cli.main import main\n"
            f"try:\n    main({list(args)!r})\nexcept SystemExit:\n    pass\n"
            "print(' '.join(sys.modules))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    return set(run.stdout.strip().splitlines()[-1].split())


def test_help_lists_every_command_with_its_short_help() -> None:
    CliRunner().invoke(main, ["center", "--help"])  # a loaded command is listed the same
    output = CliRunner().invoke(main, ["--help"]).output
    for name, entry in COMMANDS.items():
        assert f"  {name}" in output and entry.short_help in output


def test_help_imports_no_command_module() -> None:
    loaded = modules_loaded_by("--help")
    assert not [m for m in loaded if m.startswith(HEAVY)]


def test_status_does_not_import_the_center_or_the_simulators() -> None:
    loaded = modules_loaded_by("status", "--help")
    assert "posgw.cli.status" in loaded
    assert not [m for m in loaded if m.startswith(("posgw.center", "posgw.simulator",
                                                   "posgw.cli.center", "posgw.sandbox"))]


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_registered_command_loads_under_its_name(name: str) -> None:
    command = load_command(COMMANDS[name].target)
    assert isinstance(command, click.Command) and command.name == name


def test_terminals_help_says_a_decommissioned_terminal_cannot_come_back() -> None:
    for args in (["terminals", "--help"], ["terminals", "decommission", "--help"]):
        text = " ".join(CliRunner().invoke(main, args).output.split())
        assert "cannot be brought back" in text
