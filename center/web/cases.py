"""The cases desk: the queue of freeze cases, a case's page, its actions
(release, return to card, expire) and its evidence.

Reading is for every role; acting and evidence are the risk desk's (admin
may too: models.role_allows). Every action is a POST with the session's
CSRF token and a ticked confirmation, and is audited.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import PurePath
from urllib.parse import quote

from sqlalchemy import func
from sqlmodel import Session, col, select
from starlette.responses import RedirectResponse, Response

from posgw.center.case_models import CenterCase
from posgw.center.case_queries import case_by_id, case_queue
from posgw.center.case_state import UNRESOLVED
from posgw.center.web import audit
from posgw.center.web.case_commands import (
    ACTIONS,
    BAD_KEY,
    NO_BROKER,
    NO_KEY,
    NotSent,
    check_command_key,
    send_for_case,
)
from posgw.center.web.case_file import read_case_file
from posgw.center.web.case_models import ConsoleCommand, EvidenceFile
from posgw.center.web.case_story import (
    COMMAND_LABELS,
    STATUS_LABELS,
    customer_answer,
    is_overdue,
    status_label,
    time_left,
)
from posgw.center.web.guard import PageCall, client_of, page
from posgw.center.web.models import role_allows
from posgw.protocols.contract import CASE_STATUSES, SUBMIT_EVIDENCE
from posgw.protocols.redact import card_number_at

CONFIRM = "Tick the confirmation box first: nothing was sent."
ALREADY = "This case is already resolved: nothing was sent."
NO_FILE = "Choose a file to upload."
CARD_IN_FILE = ("The file or its name shows what looks like a card number: mask it (first 6, "
                "last 4) and upload it again. Nothing was kept.")
TOO_MANY = "This case has as many evidence files as it may hold ([cases] max_evidence_files)."
MAX_FILENAME = 255
#: One "view case" audit row per account and case in this long: the page
#: reloads itself every few seconds while a reply is awaited.
VIEW_AUDIT_WINDOW = timedelta(minutes=10)
#: Every message an action can answer with (msgids: translated).
MESSAGES = (CONFIRM, ALREADY, NO_FILE, CARD_IN_FILE, TOO_MANY, NO_KEY, BAD_KEY, NO_BROKER)


@dataclass(frozen=True, slots=True)
class QueueRow:
    case: CenterCase
    overdue: bool
    left: str
    status: str


@page("viewer")
def queue(call: PageCall) -> Response:
    branch = call.request.query_params.get("branch", "").strip()[:32]
    wanted = call.request.query_params.get("status", "")
    statuses = (wanted,) if wanted in CASE_STATUSES else UNRESOLVED
    now, lang = datetime.now(UTC), call.console.language_for(call.request, call.user)
    with call.console.store.session() as session:
        found = case_queue(session, now, branch_id=branch, statuses=statuses)
    rows = [QueueRow(item, is_overdue(item, now), time_left(item, now, lang),
                     status_label(item.status, lang)) for item in found]
    return call.console.render(call.request, "cases.html", call.user, rows=rows, branch=branch,
                               wanted=wanted if wanted in CASE_STATUSES else "",
                               statuses=STATUS_LABELS)


@page("viewer")
def case_page(call: PageCall) -> Response:
    return _case_page(call)


@page("risk")
def release(call: PageCall) -> Response:
    return _act(call, ACTIONS["release"])


@page("risk")
def return_to_card(call: PageCall) -> Response:
    return _act(call, ACTIONS["return"])


@page("risk")
def expire(call: PageCall) -> Response:
    return _act(call, ACTIONS["expire"])


@page("risk", upload=True)
def upload_evidence(call: PageCall) -> Response:
    found = _the_case(call)
    if found is None:
        return _not_found(call)
    upload = call.files.get("file")
    filename = _filename(upload.filename if upload else "")
    problem = _upload_problem(call, found, upload.data if upload else b"", filename)
    if problem or upload is None:
        _audit(call, "upload evidence", "refused", found.case_id)
        return _case_page(call, error=problem or NO_FILE, status_code=400)
    digest = hashlib.sha256(upload.data).hexdigest()
    try:
        check_command_key(call.console.config)
        _keep_file(call, found, upload.data, digest, filename, upload.content_type)
        send_for_case(call.console, found, SUBMIT_EVIDENCE, call.user.account.name,
                      evidence={"sha256": digest, "size_bytes": len(upload.data),
                                "filename": filename, "submitted_by": call.user.account.name,
                                "held_at": "center"})
    except NotSent as exc:
        _audit(call, "upload evidence", "failed", found.case_id)
        return _case_page(call, error=str(exc), status_code=409)
    _audit(call, "upload evidence", "ok", f"{found.case_id}: {digest[:16]}")
    return RedirectResponse(_case_url(found.case_id), status_code=303)


@page("risk")
def download_evidence(call: PageCall) -> Response:
    """Always as an attachment of no particular type: an uploaded file is
    never rendered by the browser as part of the console."""
    sha256 = call.request.path_params["sha256"][:64]
    with Session(call.console.engine) as session:
        held = session.get(EvidenceFile, sha256)
    _audit(call, "download evidence", "ok" if held else "not found", sha256[:16])
    if held is None:
        return _not_found(call)
    return Response(held.content, media_type="application/octet-stream", headers={
        "content-disposition": f"attachment; filename*=UTF-8''{quote(held.filename)}"})


def _act(call: PageCall, command: str) -> Response:
    found = _the_case(call)
    if found is None:
        return _not_found(call)
    refusal = (CONFIRM if call.form.get("confirm") != "yes"
               else ALREADY if found.status not in UNRESOLVED else "")
    if refusal:
        _audit(call, command, "refused", found.case_id)
        return _case_page(call, error=refusal, status_code=409)
    try:
        sent = send_for_case(call.console, found, command, call.user.account.name)
    except NotSent as exc:
        _audit(call, command, "failed", found.case_id)
        return _case_page(call, error=str(exc), status_code=409)
    _audit(call, command, "sent", f"{found.case_id}: {sent.command_id}")
    return RedirectResponse(_case_url(found.case_id), status_code=303)


def _case_page(call: PageCall, *, error: str = "", status_code: int = 200) -> Response:
    found = _the_case(call)
    if found is None:
        return _not_found(call)
    lang, now = call.console.language_for(call.request, call.user), datetime.now(UTC)
    with call.console.store.session() as session:
        file = read_case_file(session, found)
    if status_code == 200:
        audit.record_once(call.console.engine, call.user.account.name, "view case", "ok",
                          object=found.case_id, client=client_of(call.request),
                          within=VIEW_AUDIT_WINDOW)
    config = call.console.config
    return call.console.render(
        call.request, "case.html", call.user, status_code=status_code, case=found,
        error=error, status=status_label(found.status, lang), labels=STATUS_LABELS,
        command_labels=COMMAND_LABELS,
        overdue=is_overdue(found, now), left=time_left(found, now, lang),
        answer=customer_answer(found, config.cases, config.calendar, now.date(), lang),
        unresolved=found.status in UNRESOLVED, can_act=_can_act(call),
        awaiting=file.awaiting_reply, **file.context())


def _upload_problem(call: PageCall, found: CenterCase, data: bytes, filename: str) -> str:
    if not data:
        return NO_FILE
    if found.status not in UNRESOLVED:
        return ALREADY
    if card_number_at(data) is not None or card_number_at(filename.encode()) is not None:
        return CARD_IN_FILE
    with Session(call.console.engine) as session:
        sent = session.scalar(select(func.count()).select_from(ConsoleCommand).where(
            col(ConsoleCommand.case_id) == found.case_id,
            col(ConsoleCommand.evidence_sha256).is_not(None))) or 0
    return TOO_MANY if sent >= call.console.config.cases.max_evidence_files else ""


def _keep_file(call: PageCall, found: CenterCase, data: bytes, digest: str, filename: str,
               content_type: str) -> None:
    """Stored once by its hash (the same letter for two cases is one row)."""
    with Session(call.console.engine) as session:
        if session.get(EvidenceFile, digest) is None:
            session.add(EvidenceFile(sha256=digest, case_id=found.case_id, filename=filename,
                                     content_type=content_type[:128] or
                                     "application/octet-stream",
                                     size_bytes=len(data), uploaded_by=call.user.account.name,
                                     uploaded_at=datetime.now(UTC), content=data))
            session.commit()


def _filename(name: str) -> str:
    """The last part of the name the browser sent (never a path), bounded."""
    return PurePath(name.replace("\\", "/")).name.strip()[:MAX_FILENAME] or "evidence"


def _the_case(call: PageCall) -> CenterCase | None:
    with call.console.store.session() as session:
        return case_by_id(session, call.request.path_params["case_id"][:64])


def _not_found(call: PageCall) -> Response:
    return call.console.render(call.request, "case_not_found.html", call.user,
                               status_code=404)


def _can_act(call: PageCall) -> bool:
    return role_allows(call.user.account.role, "risk")


def _case_url(case_id: str) -> str:
    return "/cases/" + quote(case_id, safe="")


def _audit(call: PageCall, action: str, outcome: str, target: str) -> None:
    audit.record(call.console.engine, call.user.account.name, action, outcome,
                 object=target, client=client_of(call.request))
