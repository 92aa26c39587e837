"""The command gate, payload by payload: what is dropped unanswered, what is
refused with a reply, and that no reason quotes the payload."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from posgw.center.command_key import sign_command
from posgw.gateway.logsetup import ThrottledLog
from posgw.gateway.security.command_auth import CommandAuthenticator
from posgw.gateway.security.command_gate import (
    Accepted,
    CommandGate,
    CommandWindow,
    Dropped,
)
from posgw.protocols import contract
from posgw.protocols.canonical_json import canonical_json

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
CENTER = Ed25519PrivateKey.generate()
WINDOW = CommandWindow(timedelta(seconds=300), timedelta(seconds=60))
SIGNED_ONLY = CommandGate("B001", WINDOW, CommandAuthenticator([CENTER.public_key()]))


def command(action: str = contract.PING, *, at: datetime = NOW, **fields: Any) -> dict[str, Any]:
    return contract.command("B001", action, command_id=str(uuid.uuid4()), issued_at=at,
                            **fields)


def raw(payload: dict[str, Any]) -> bytes:
    return canonical_json(payload)


def test_a_fresh_signed_command_is_accepted() -> None:
    checked = SIGNED_ONLY.check(raw(sign_command(command(), CENTER)), NOW)
    assert isinstance(checked, Accepted) and checked.refusal is None


@pytest.mark.parametrize(("payload", "reason"), [
    (b"x" * 4097, "too_large"),
    (b"\xff\xfe", "not_json"),
    (b"[1, 2]", "not_json"),
    (raw({**command(), "command_id": "not-a-uuid"}), "schema"),
    (raw({k: v for k, v in command().items() if k != "issued_at"}), "schema"),
    (raw({**command(), "issued_at": "yesterday"}), "schema"),
    (raw({**command(), "reboot": True}), "schema"),
    (raw(command()), "unauthenticated"),
    (raw(sign_command(command(), Ed25519PrivateKey.generate())), "unauthenticated"),
])
def test_what_nobody_who_may_command_sent_is_dropped(payload: bytes, reason: str) -> None:
    checked = SIGNED_ONLY.check(payload, NOW)
    assert isinstance(checked, Dropped) and checked.reason == reason


def test_a_drop_reason_never_quotes_the_payload() -> None:
    sneaky = "4111111111111111" * 10
    for payload in ({**command(), sneaky: 1}, {**command(), "case_id": sneaky},
                    {**command(), "command_id": sneaky}):
        checked = SIGNED_ONLY.check(json.dumps(payload).encode(), NOW)
        assert isinstance(checked, Dropped) and "4111" not in checked.detail


@pytest.mark.parametrize(("at", "words"), [
    (NOW - timedelta(seconds=301), "stale"),
    (datetime(2019, 1, 1, tzinfo=UTC), "stale"),
    (NOW + timedelta(seconds=61), "future"),
])
def test_a_signed_command_outside_the_window_is_refused_with_a_reason(
        at: datetime, words: str) -> None:
    checked = SIGNED_ONLY.check(raw(sign_command(command(at=at), CENTER)), NOW)
    assert isinstance(checked, Accepted) and checked.refusal is not None
    assert words in checked.refusal


def test_the_window_edges_are_inside() -> None:
    for at in (NOW - timedelta(seconds=300), NOW + timedelta(seconds=60)):
        checked = SIGNED_ONLY.check(raw(sign_command(command(at=at), CENTER)), NOW)
        assert isinstance(checked, Accepted) and checked.refusal is None


def test_another_branchs_signed_command_is_refused() -> None:
    other = {**command(), "branch_id": "B002"}
    checked = SIGNED_ONLY.check(raw(sign_command(other, CENTER)), NOW)
    assert isinstance(checked, Accepted) and checked.refusal == "this gateway serves branch B001"


def test_obeying_unsigned_still_checks_size_schema_and_window() -> None:
    unsigned = CommandGate("B001", WINDOW, None)
    assert isinstance(unsigned.check(raw(command()), NOW), Accepted)
    assert isinstance(unsigned.check(b"x" * 5000, NOW), Dropped)
    stale = unsigned.check(raw(command(at=NOW - timedelta(days=1))), NOW)
    assert isinstance(stale, Accepted) and stale.refusal is not None


def test_a_throttled_log_says_how_many_lines_it_held_back(
        caplog: pytest.LogCaptureFixture) -> None:
    clock = [0.0]
    throttled = ThrottledLog(logging.getLogger("test.throttled"), 10.0, lambda: clock[0])
    with caplog.at_level(logging.WARNING, "test.throttled"):
        for _ in range(1000):
            throttled.warning("junk", "junk dropped")
        clock[0] = 11.0
        throttled.warning("junk", "junk dropped")
    assert [r.getMessage() for r in caplog.records] == [
        "junk dropped", "junk dropped (and 999 more like it in the last 11 s)"]
