"""Files and folders that only the daemon's own user may open: key folders,
SQLite databases, evidence.

Under systemd the units' `UMask=0077` makes all of them private. Run by hand
(`posgw run`, `posgw center`, with the common umask 022) the daemons see to
it themselves: folders are made 0700 and databases 0600 whatever the umask.
A key folder that group or others may enter is refused rather than repaired
(`loose_folder`): whoever could enter it may have copied what it held, and
starting anyway would hide that.

Shared by the gateway and the center (which never import each other);
stdlib only.
"""

from __future__ import annotations

import os
import pwd
import stat
from collections.abc import Iterable
from pathlib import Path

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
#: Any permission bit for group or others.
LOOSE_BITS = 0o077
#: SQLite's companions of a database file in WAL mode.
SQLITE_COMPANIONS = ("-wal", "-shm")


def make_private_folder(folder: Path) -> bool:
    """Create `folder` 0700 (missing parents get the usual mode); True when it
    was created, False when it was there already (its mode is left alone)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    try:
        folder.mkdir(mode=PRIVATE_DIR_MODE)
    except FileExistsError:
        return False
    os.chmod(folder, PRIVATE_DIR_MODE)  # mkdir's mode passes through the umask
    return True


def loose_folder(folder: Path) -> str | None:
    """Why `folder`, which holds secrets, is not private; None when it is."""
    mode = stat.S_IMODE(folder.stat().st_mode)
    if not mode & LOOSE_BITS:
        return None
    return (f"mode {mode:04o} lets group or others into a folder of secrets; refusing to "
            f"use it. Fix: chmod 700 {folder}")


def create_private_file(path: Path) -> bool:
    """Create an empty `path` mode 0600 unless it exists; True when created.

    For a SQLite database this is enough for its companions too: SQLite gives
    the -wal and -shm files the mode of the database file.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    except FileExistsError:
        return False
    try:
        os.fchmod(fd, PRIVATE_FILE_MODE)  # O_CREAT's mode passes through the umask
    finally:
        os.close(fd)
    return True


def tighten(paths: Iterable[Path]) -> list[Path]:
    """`chmod 600` those of `paths` that exist, belong to this user and that
    group or others may open; returns them. Files of another owner are left
    alone (this user could not change them anyway)."""
    tightened = []
    for path in paths:
        try:
            info = path.stat()
        except FileNotFoundError:
            continue
        if info.st_uid == os.geteuid() and stat.S_IMODE(info.st_mode) & LOOSE_BITS:
            os.chmod(path, PRIVATE_FILE_MODE)
            tightened.append(path)
    return tightened


def sqlite_files(database: Path) -> list[Path]:
    """The database file and its -wal and -shm companions."""
    return [database, *(database.with_name(database.name + suffix)
                        for suffix in SQLITE_COMPANIONS)]


def private_sqlite_file(database: str | None) -> list[Path]:
    """Before SQLite opens `database` (a path; None or ":memory:" for none):
    create it 0600, or tighten it and its companions when they are this
    user's and group or others may open them; returns the ones tightened.

    A folder that is missing or not writable is left for SQLite to report
    ("unable to open database file"), as every caller already handles it.
    """
    if not database or database == ":memory:":
        return []
    path = Path(database)
    try:
        create_private_file(path)
    except OSError:
        return []
    return tighten(sqlite_files(path))


def folder_problem(folder: Path, *, write: bool) -> str | None:
    """Why this user cannot use `folder` (read and enter it, and with `write`
    create files in it); None when it can."""
    if not folder.exists():
        return f"folder {folder} does not exist"
    if not folder.is_dir():
        return f"{folder} is not a folder"
    needed = os.R_OK | os.X_OK | (os.W_OK if write else 0)
    if not os.access(folder, needed):
        what = "writable" if write and os.access(folder, os.R_OK | os.X_OK) else "readable"
        return f"folder {folder} is not {what} by user {user_name()}"
    return None


def user_name() -> str:
    """This process's user, as an operator would name it in `chown`."""
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:  # a uid with no passwd entry (e.g. inside a container)
        return str(os.geteuid())
