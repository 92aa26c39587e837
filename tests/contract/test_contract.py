"""The wire contract: topics built and parsed alike, payloads as the schemas say."""

from __future__ import annotations

import ast
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from posgw.protocols import contract
from posgw.protocols.contract import Topic, TopicKind, parse_topic

CONTRACT = Path(contract.__file__).resolve().parent
SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
NOW = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(("topic", "parsed"), [
    (contract.tx_topic("pos/v1", "B1", "T1"), Topic(TopicKind.TX, "B1", "T1")),
    (contract.terminal_status_topic("pos/v1", "B1", "T1"),
     Topic(TopicKind.TERMINAL_STATUS, "B1", "T1")),
    (contract.reconciliation_topic("pos/v1", "B1", "T1"),
     Topic(TopicKind.RECONCILIATION, "B1", "T1")),
    (contract.gateway_status_topic("pos/v1", "B1"), Topic(TopicKind.GATEWAY_STATUS, "B1")),
    (contract.cases_topic("pos/v1", "B1"), Topic(TopicKind.CASES, "B1")),
    (contract.command_topic("pos/v1", "B1"), Topic(TopicKind.COMMAND, "B1")),
    (contract.command_reply_topic("pos/v1", "B1"), Topic(TopicKind.COMMAND_REPLY, "B1")),
    (contract.confirm_topic("pos/v1", "B1", "gw-b1-1"), Topic(TopicKind.CONFIRM, "B1", "gw-b1-1")),
])
def test_every_topic_built_parses_back_to_its_kind_branch_and_terminal(
        topic: str, parsed: Topic) -> None:
    assert parse_topic("pos/v1", topic) == parsed


def test_the_topics_are_the_design_tables() -> None:
    assert contract.DEFAULT_TOPIC_PREFIX == "pos/v1"
    assert contract.tx_topic("pos/v1", "B1", "T1") == "pos/v1/B1/T1/tx"
    assert contract.gateway_status_topic("pos/v1", "B1") == "pos/v1/B1/gateway/status"
    assert contract.command_reply_topic("pos/v1", "B1") == "pos/v1/B1/cmd/reply"
    assert contract.shared(contract.tx_filter("p"), "g") == "$share/g/p/+/+/tx"
    assert contract.shared(contract.reconciliation_filter("p"), None) == "p/+/+/reconciliation"


@pytest.mark.parametrize("topic", ["other/B1/T1/tx", "pos/v1/B1/T1/nope", "pos/v1/B1",
                                   "pos/v1//T1/tx", "pos/v1/B1/T1/tx/extra"])
def test_a_topic_outside_the_contract_parses_to_none(topic: str) -> None:
    assert parse_topic("pos/v1", topic) is None


def test_the_vocabulary_is_each_schemas_enum() -> None:
    def enum(name: str, field: str) -> list[str]:
        schema = json.loads((SCHEMAS / f"{name}.json").read_text())
        return list(schema["properties"][field]["enum"])

    assert list(contract.TX_STATUSES) == enum("tx-event.v1", "status")
    assert list(contract.CASE_STATUSES) == enum("case.v1", "status")
    assert list(contract.TERMINAL_STATES) == enum("terminal-status.v1", "state")
    assert list(contract.GATEWAY_STATES) == enum("gateway-status.v1", "state")
    assert list(contract.RECONCILIATION_OUTCOMES) == enum("reconciliation.v1", "outcome")
    assert list(contract.COMMAND_OUTCOMES) == enum("command-reply.v1", "outcome")
    assert sorted(contract.COMMAND_ACTIONS) == sorted(enum("command.v1", "command"))
    assert {f"{name}.json" for name in contract.SCHEMA_NAMES} == {
        path.name for path in SCHEMAS.glob("*.json")}


def test_an_overdue_case_is_one_still_open_past_its_due_time() -> None:
    class Deadlines:
        first_response_due_at = NOW
        expires_at = NOW + timedelta(days=30)

    def case(status: str, at: datetime) -> dict[str, object]:
        return contract.case_event("c1", status, event_id="e1", terminal_id="T1", rule="r",
                                   pan_token=None, amount_minor=100, currency="EUR",
                                   tx_event_ids=["t1"], branch_id="B1", gateway_id="g1",
                                   occurred_at=at, deadlines=Deadlines())

    assert case("open", NOW)["overdue"] is True
    assert case("open", NOW - timedelta(seconds=1))["overdue"] is False
    assert case("released", NOW + timedelta(days=1))["overdue"] is False
    assert case("open", NOW)["first_response_due_at"] == "2026-03-01T10:00:00Z"


def test_a_reply_detail_is_cut_to_the_schemas_limit() -> None:
    reply = contract.command_reply("c1", contract.DONE, "x" * 300, event_id="e1",
                                   branch_id="B1", gateway_id="g1", occurred_at=NOW)
    assert len(reply["detail"]) == contract.MAX_REPLY_DETAIL and reply["detail"].endswith("...")


def test_a_command_carries_its_issue_time_in_milliseconds() -> None:
    command = contract.command("B1", contract.RELEASE, command_id="c1", issued_at=NOW,
                               case_id="k1")
    assert command == {"command_id": "c1", "schema": "command.v1", "branch_id": "B1",
                       "command": "release", "issued_at": "2026-03-01T10:00:00.000Z",
                       "case_id": "k1"}


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        contract.utc_iso(datetime(2026, 3, 1))


def test_the_contract_imports_only_the_standard_library_and_protocols() -> None:
    for path in CONTRACT.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                top = name.split(".")[0]
                assert (top in sys.stdlib_module_names or name.startswith("posgw.protocols")
                        or top == "__future__"), f"{path.name} imports {name}"
