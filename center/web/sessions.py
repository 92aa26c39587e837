"""Signed-in browsers, kept in the database (center_web_sessions).

The cookie carries 32 random bytes; the table only their SHA-256, the
account name, the session's CSRF token and when it ends. Logout and
`users disable` end a session at once, on every console process.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, timedelta

from sqlalchemy import delete
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from posgw.center.web.accounts import Account, find_user
from posgw.center.web.models import ConsoleSession
from posgw.drivers.clock import SYSTEM_CLOCK, Clock


@dataclass(frozen=True, slots=True)
class SignedIn:
    """The account behind a request, and its session's CSRF token."""

    account: Account
    csrf_token: str
    token_sha256: str


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def open_session(engine: Engine, name: str, ttl: timedelta,
                 clock: Clock = SYSTEM_CLOCK) -> str:
    """A new session for `name`; returns the cookie's token."""
    token = secrets.token_urlsafe(32)
    with Session(engine) as session:
        # Expired rows of anyone go here, so the table does not grow forever.
        session.execute(delete(ConsoleSession).where(
            col(ConsoleSession.expires_at) < clock.utc_now()))
        session.add(ConsoleSession(token_sha256=_digest(token), user_name=name,
                                   csrf_token=secrets.token_urlsafe(32),
                                   expires_at=clock.utc_now() + ttl))
        session.commit()
    return token


def signed_in(engine: Engine, token: str | None,
              clock: Clock = SYSTEM_CLOCK) -> SignedIn | None:
    """The live session of this cookie, or None (none, ended, expired, or
    its account disabled)."""
    if not token or len(token) > 128:
        return None
    with Session(engine) as session:
        row = session.scalars(select(ConsoleSession).where(
            col(ConsoleSession.token_sha256) == _digest(token))).first()
    if row is None:
        return None
    expires = row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(tzinfo=UTC)
    if expires <= clock.utc_now():
        close_session(engine, row.token_sha256)
        return None
    account = find_user(engine, row.user_name)
    if account is None or account.disabled:
        return None
    return SignedIn(account, row.csrf_token, row.token_sha256)


def close_session(engine: Engine, token_sha256: str) -> None:
    with Session(engine) as session:
        session.execute(delete(ConsoleSession).where(
            col(ConsoleSession.token_sha256) == token_sha256))
        session.commit()


def close_other_sessions(engine: Engine, name: str, keep_sha256: str) -> None:
    """After a password change: whoever signed in with the old one is out."""
    with Session(engine) as session:
        session.execute(delete(ConsoleSession).where(
            col(ConsoleSession.user_name) == name,
            col(ConsoleSession.token_sha256) != keep_sha256))
        session.commit()
