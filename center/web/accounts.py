"""Console accounts: add, list, disable, and the password check with its
lockout. Used by `posgw center users` and by the login page alike.

A wrong password counts against the account; after `max_failures` in a row
it is locked for `lockout`, and every attempt meanwhile is refused without
checking the password (so a guesser learns nothing while it is locked).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from posgw.center.web.models import ROLES, ConsoleUser
from posgw.drivers.clock import SYSTEM_CLOCK, Clock

#: OWASP's authentication guidance: a handful of tries, then a pause.
DEFAULT_MAX_FAILURES = 5
DEFAULT_LOCKOUT = timedelta(minutes=15)
#: Long enough to resist guessing offline from a stolen database's hashes.
MIN_PASSWORD_LENGTH = 10
LANGUAGES = ("en", "vi", "zh_Hans")
#: Random bytes of a one-time password (URL-safe base64: 16 characters).
ONE_TIME_PASSWORD_BYTES = 12
_HASHER = PasswordHasher()  # argon2id with the library's (RFC 9106) defaults


class AccountError(ValueError):
    """A bad name, role, password or language; the message says which."""


class LoginOutcome(StrEnum):
    OK = "ok"
    FAILED = "failed"  # unknown name, wrong password or disabled: one answer for all
    LOCKED = "locked"


@dataclass(frozen=True, slots=True)
class Account:
    name: str
    role: str
    language: str
    disabled: bool
    locked_until: datetime | None
    must_change: bool = False


def add_user(engine: Engine, name: str, role: str, password: str, *,
             language: str = "", must_change: bool = False,
             clock: Clock = SYSTEM_CLOCK) -> None:
    """A new account; with `must_change` its first sign-in leads only to
    choosing a new password."""
    if not name or len(name) > 64 or not all(c.isalnum() or c in "-_." for c in name):
        raise AccountError("a name is 1-64 letters, digits, '-', '_' or '.'")
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}")
    if language and language not in LANGUAGES:
        raise AccountError(f"language must be one of {', '.join(LANGUAGES)}")
    _check_length(password)
    with Session(engine) as session:
        if _user(session, name) is not None:
            raise AccountError(f"{name} exists already")
        session.add(ConsoleUser(name=name, role=role, password_hash=_HASHER.hash(password),
                                language=language, must_change=must_change,
                                created_at=clock.utc_now()))
        session.commit()


def one_time_password() -> str:
    """A password to hand over once (printed, read out): the account must
    replace it at its first sign-in."""
    return secrets.token_urlsafe(ONE_TIME_PASSWORD_BYTES)


def change_password(engine: Engine, name: str, current: str, new: str, *,
                    max_failures: int = DEFAULT_MAX_FAILURES,
                    lockout: timedelta = DEFAULT_LOCKOUT) -> None:
    """The account's own change: the current password proves who asks, and
    a wrong one counts towards the lockout as at sign-in (a session left
    open is no way to guess it). Clears `must_change`. AccountError says
    what is wrong."""
    _check_length(new)
    if new == current:
        raise AccountError("the new password must differ from the current one")
    if check_password(engine, name, current, max_failures=max_failures,
                      lockout=lockout) is not LoginOutcome.OK:
        raise AccountError("the current password is wrong")
    with Session(engine) as session:
        user = _user(session, name)
        if user is None:
            raise AccountError("the current password is wrong")
        user.password_hash, user.must_change = _HASHER.hash(new), False
        session.add(user)
        session.commit()


def _check_length(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"a password has at least {MIN_PASSWORD_LENGTH} characters")


def list_users(engine: Engine) -> list[Account]:
    with Session(engine) as session:
        users = session.scalars(select(ConsoleUser).order_by(col(ConsoleUser.name)))
        return [_account(user) for user in users]


def find_user(engine: Engine, name: str) -> Account | None:
    with Session(engine) as session:
        user = _user(session, name)
        return None if user is None else _account(user)


def disable_user(engine: Engine, name: str) -> None:
    """The account can no longer sign in; its open sessions end at their
    next request (each request reads the account)."""
    with Session(engine) as session:
        user = _user(session, name)
        if user is None:
            raise AccountError(f"no account named {name}")
        user.disabled = True
        session.add(user)
        session.commit()


def set_language(engine: Engine, name: str, language: str) -> None:
    if language and language not in LANGUAGES:
        raise AccountError(f"language must be one of {', '.join(LANGUAGES)}")
    with Session(engine) as session:
        user = _user(session, name)
        if user is not None:
            user.language = language
            session.add(user)
            session.commit()


def check_password(engine: Engine, name: str, password: str, *,
                   max_failures: int = DEFAULT_MAX_FAILURES,
                   lockout: timedelta = DEFAULT_LOCKOUT,
                   clock: Clock = SYSTEM_CLOCK) -> LoginOutcome:
    now = clock.utc_now()
    with Session(engine) as session:
        user = _user(session, name)
        if user is None or user.disabled:
            _HASHER.hash(password)  # the same work as a real check: no timing tell
            return LoginOutcome.FAILED
        if user.locked_until is not None and _aware(user.locked_until) > now:
            return LoginOutcome.LOCKED
        if _verifies(user.password_hash, password):
            user.failed_logins, user.locked_until = 0, None
            outcome = LoginOutcome.OK
        else:
            user.failed_logins += 1
            outcome = LoginOutcome.FAILED
            if user.failed_logins >= max_failures:
                user.failed_logins, user.locked_until = 0, now + lockout
                outcome = LoginOutcome.LOCKED
        session.add(user)
        session.commit()
        return outcome


def _verifies(password_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _user(session: Session, name: str) -> ConsoleUser | None:
    return session.scalars(select(ConsoleUser).where(col(ConsoleUser.name) == name)).first()


def _account(user: ConsoleUser) -> Account:
    locked = _aware(user.locked_until) if user.locked_until is not None else None
    return Account(user.name, user.role, user.language, user.disabled, locked,
                   user.must_change)


def _aware(moment: datetime) -> datetime:
    # SQLite hands timezone-aware columns back naive; they were written in UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
