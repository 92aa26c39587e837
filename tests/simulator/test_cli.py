"""`posgw simulate` and `posgw acquirer` from the command line."""

from __future__ import annotations

import asyncio
import subprocess
import sys

from click.testing import CliRunner

from posgw.cli.main import main
from posgw.sandbox.ports import free_port
from posgw.simulator.loadgen import terminal_ids
from posgw.simulator.scenarios import SCENARIOS
from tests.posgw_script import POSGW
from tests.simulator.conftest import acquirer_context


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
    code = ("import sys, posgw.cli.main; "
            "print(any(m.startswith('posgw.simulator') for m in sys.modules))")
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout
    assert output.strip() == "False"


async def test_load_run_numbers_its_terminals_from_the_given_terminal_id() -> None:
    async with acquirer_context() as (ctx, server):
        process = await asyncio.create_subprocess_exec(
            POSGW, "simulate", "-p", "iso87-binary", "--tcp", f"127.0.0.1:{server.port}",
            "--rate", "10", "--duration", "0.3", "--terminals", "2",
            "--terminal-id", "T0000041", stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE)
        _, stderr = await process.communicate()
    assert process.returncode == 0, stderr.decode()
    assert ctx.acquirer is not None
    debits = {tid: ctx.acquirer.totals(tid).debits for tid in ("T0000041", "T0000042",
                                                               "T0000001")}
    assert debits == {"T0000041": 3, "T0000042": 3, "T0000001": 0}


def test_terminal_ids_count_up_in_the_trailing_digits_keeping_their_width() -> None:
    assert terminal_ids("ATM00098", 3) == ["ATM00098", "ATM00099", "ATM00100"]
    assert terminal_ids("KIOSK", 1) == ["KIOSK"]


def test_simulate_refuses_a_terminal_id_it_cannot_number() -> None:
    outcome = CliRunner().invoke(main, ["simulate", "--tcp", "127.0.0.1:1", "--rate", "1",
                                        "--terminals", "2", "--terminal-id", "T99"])
    assert outcome.exit_code == 2 and "do not fit" in outcome.output


def test_a_gateway_that_refuses_the_connection_is_one_line_and_status_2() -> None:
    port = free_port()  # nothing listens there
    for extra in ([], ["--rate", "5", "--duration", "1"]):  # scenarios, then the load run
        result = subprocess.run([POSGW, "simulate", "--tcp", f"127.0.0.1:{port}", *extra],
                                capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 2, result.stderr
        assert result.stderr.startswith(f"posgw simulate: tcp:127.0.0.1:{port}: ")
        assert "Traceback" not in result.stderr
