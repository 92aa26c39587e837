"""The commands added for freeze cases and risk reloads match command.v1."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from posgw.center.commands import build_command, command_payload

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
jsonschema = pytest.importorskip("jsonschema")
EVIDENCE = {"sha256": "0f" * 32, "size_bytes": 1234, "filename": "letter.pdf",
            "submitted_by": "risk-desk", "held_at": "center"}


def validate(command: dict[str, Any]) -> None:
    schema = json.loads((SCHEMAS / "command.v1.json").read_text())
    jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker()
                                    ).validate(command)


@pytest.mark.parametrize(("action", "args"), [("reload_risk", []), ("expire", ["case-1"])])
def test_new_cli_actions_build_valid_commands(action: str, args: list[str]) -> None:
    validate(build_command("B001", action, args))


def test_submit_evidence_carries_the_file_metadata() -> None:
    validate(command_payload("B001", "submit_evidence", case_id="case-1", evidence=EVIDENCE))


@pytest.mark.parametrize("command", [
    command_payload("B001", "submit_evidence", case_id="case-1"),  # no evidence
    command_payload("B001", "submit_evidence", case_id="case-1",
                    evidence={**EVIDENCE, "sha256": "not-a-hash"}),
    command_payload("B001", "expire"),  # no case
])
def test_incomplete_commands_do_not_match(command: dict[str, Any]) -> None:
    with pytest.raises(jsonschema.ValidationError):
        validate(command)
