"""Everything a case's page shows, read in one database session."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from posgw.center.case_models import CaseTransition, CenterCase, CommandReply
from posgw.center.case_queries import attempts_around, case_history, events_by_id, replies_to
from posgw.center.case_state import parse_time
from posgw.center.models import ReceivedEvent
from posgw.center.queries import linked_events
from posgw.center.web.case_models import ConsoleCommand


@dataclass(frozen=True, slots=True)
class CaseFile:
    frozen: ReceivedEvent | None  # the frozen sale, once it is at the center
    frozen_at: datetime
    attempts: list[ReceivedEvent]  # this card on this terminal around the freeze
    resulting: list[ReceivedEvent]  # the re-clearing or refund, as they arrive
    history: list[CaseTransition]
    commands: list[ConsoleCommand]  # sent from the console, oldest first
    replies: dict[str, CommandReply]  # by command_id
    evidence: list[dict[str, Any]]  # recorded by the branch (case.v1 metadata)
    waiting: list[ConsoleCommand]  # evidence uploaded here, not recorded by the branch yet

    @property
    def awaiting_reply(self) -> bool:
        return any(command.command_id not in self.replies for command in self.commands)

    def context(self) -> dict[str, Any]:
        """The template's names."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def read_case_file(session: Session, found: CenterCase) -> CaseFile:
    tx_ids = json.loads(found.tx_event_ids)
    frozen = events_by_id(session, tx_ids).get(tx_ids[0]) if tx_ids else None
    frozen_at = parse_time(frozen.occurred_at if frozen else found.opened_at)
    attempts = [event for event in attempts_around(session, found, frozen_at)
                if frozen is None  # the resolution is listed under "resulting"
                or event.payload.get("original_event_id") != frozen.event_id]
    commands = list(session.scalars(select(ConsoleCommand).where(
        col(ConsoleCommand.case_id) == found.case_id).order_by(col(ConsoleCommand.at))))
    evidence = json.loads(found.evidence)
    held = {item["sha256"] for item in evidence}
    return CaseFile(
        frozen=frozen, frozen_at=frozen_at, attempts=attempts,
        resulting=linked_events(session, frozen) if frozen else [],
        history=case_history(session, found.case_id), commands=commands,
        replies=replies_to(session, [command.command_id for command in commands]),
        evidence=evidence,
        waiting=[command for command in commands
                 if command.evidence_sha256 and command.evidence_sha256 not in held])
