"""`posgw simulate` and `posgw acquirer` from the command line."""

from __future__ import annotations

import subprocess
import sys

from click.testing import CliRunner

from posgw.cli.main import main
from posgw.simulator.scenarios import SCENARIOS


def test_simulate_help_lists_every_scenario() -> None:
    output = CliRunner().invoke(main, ["simulate", "--help"]).output
    assert all(name in output for name in SCENARIOS)


def test_simulate_needs_exactly_one_target() -> None:
    outcome = CliRunner().invoke(main, ["simulate", "-s", "refund"])
    assert outcome.exit_code == 2 and "exactly one of" in outcome.output


def test_simulate_rejects_an_unknown_scenario() -> None:
    outcome = CliRunner().invoke(main, ["simulate", "--tcp", "127.0.0.1:1", "-s", "nope"])
    assert outcome.exit_code == 2 and "unknown scenario" in outcome.output


def test_cli_module_does_not_import_the_simulator() -> None:
    code = "import sys, cli.main; print(any(m.startswith('simulator') for m in sys.modules))"
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout
    assert output.strip() == "False"
