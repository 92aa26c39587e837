"""A private PostgreSQL server on a loopback port, to crash and start again.

The machine's own PostgreSQL is shared (other tests use it) and must never
be restarted; a soak that crashes the center's database gets a server of
its own: `initdb` into a fresh folder, `postgres` listening on 127.0.0.1
only, on a free port, no Unix socket. `crash()` is `pg_ctl stop -m
immediate` (no checkpoint, no clean shutdown: the next start replays the
WAL, as after a power cut of the database host); `start()` again serves the
same data folder on the same port.

Debian and Ubuntu keep the server binaries out of PATH, under
/usr/lib/postgresql/<major>/bin; the newest one found is used. initdb and
postgres refuse to run as root: run as root, the server runs as the
`postgres` OS user, in a folder that user owns.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from posgw.sandbox.ports import LOOPBACK, free_port
from posgw.sandbox.processes import SetupError, wait_until

SERVER_BIN_GLOB = "/usr/lib/postgresql/*/bin"
REQUIRED_BINARIES = ("initdb", "pg_ctl", "postgres", "pg_isready")
#: The OS user a server started by root runs as (Debian's package creates it).
SERVER_USER = "postgres"
SUPERUSER = "postgres"  # the database role initdb creates; trust auth on loopback
#: Crash recovery after an immediate stop replays the WAL since the last
#: checkpoint: seconds on a loaded 2-core machine, rarely more.
START_DEADLINE_S = 60.0
STOP_DEADLINE_S = 60.0
INITDB_TIMEOUT_S = 120.0
LOG_TAIL_CHARS = 2000


class PostgresUnavailable(SetupError):
    """The PostgreSQL server binaries (initdb, pg_ctl, postgres) are not installed."""


def _major_version(bin_dir: Path) -> tuple[int, ...]:
    name = bin_dir.parent.name
    return tuple(int(part) for part in name.split(".") if part.isdigit())


def postgres_bin_dir() -> Path | None:
    """The newest folder that holds every server binary we run, or None."""
    candidates = [Path(found) for found in sorted(
        str(path) for path in Path("/").glob(SERVER_BIN_GLOB.lstrip("/")))]
    on_path = shutil.which("pg_ctl")
    if on_path is not None:
        candidates.append(Path(on_path).resolve().parent)
    complete = [folder for folder in candidates
                if all((folder / name).is_file() for name in REQUIRED_BINARIES)]
    return max(complete, key=_major_version) if complete else None


def require_bin_dir(bin_dir: Path | None = None) -> Path:
    """`bin_dir` (or the one found) once it holds the binaries; PostgresUnavailable if not."""
    found = bin_dir if bin_dir is not None else postgres_bin_dir()
    if found is None or not all((found / name).is_file() for name in REQUIRED_BINARIES):
        where = str(found) if found is not None else SERVER_BIN_GLOB
        raise PostgresUnavailable(
            f"PostgreSQL server binaries ({', '.join(REQUIRED_BINARIES)}) not found in "
            f"{where}: install them, e.g. `apt-get install postgresql`")
    return found


def _server_user() -> pwd.struct_passwd | None:
    """The account to run as: None when we are not root (we run as ourselves)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SERVER_USER)
    except KeyError:
        raise PostgresUnavailable(f"running as root, and there is no `{SERVER_USER}` user "
                                  "to run PostgreSQL as (initdb refuses root)") from None


class PrivatePostgres:
    """A PostgreSQL server of our own on 127.0.0.1:`port`, restartable on that port.

    Its data folder is a fresh temporary folder (under `parent`, default the
    system's temporary folder: it must be reachable by the server's user),
    removed by `remove()` and on leaving the `with` block. The server's
    output is appended to `log` across restarts.
    """

    def __init__(self, log: Path, *, bin_dir: Path | None = None, parent: Path | None = None,
                 start_deadline_s: float = START_DEADLINE_S) -> None:
        self.bin_dir = require_bin_dir(bin_dir)
        self.user = _server_user()
        self.log = log
        self.port = free_port()
        self.start_deadline_s = start_deadline_s
        self.folder = Path(tempfile.mkdtemp(prefix="posgw-pg-", dir=parent))
        self.data = self.folder / "data"
        self.process: subprocess.Popen[bytes] | None = None
        self.initialized = False

    @property
    def url(self) -> str:
        """The SQLAlchemy URL of its `postgres` database, as the center takes it."""
        return f"postgresql+psycopg://{SUPERUSER}@{LOOPBACK}:{self.port}/postgres"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def __enter__(self) -> PrivatePostgres:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None,
                 exc: BaseException | None, traceback: TracebackType | None) -> None:
        try:
            self.stop()
        finally:
            self.remove()

    def start(self) -> None:
        """Start it (initdb the first time); return once it accepts connections."""
        if not self.initialized:
            self._initdb()
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [str(self.bin_dir / "postgres"), "-D", str(self.data), "-p", str(self.port),
                 "-c", f"listen_addresses={LOOPBACK}", "-c", "unix_socket_directories="],
                stdout=out, stderr=out, **self._as_server_user())
        try:
            wait_until(self.accepts, f"PostgreSQL on port {self.port}",
                       self.start_deadline_s, self.process)
        except SetupError as exc:
            self.crash()
            raise SetupError(f"{exc}; its log: {self.log_tail()}") from None

    def accepts(self) -> bool:
        """Whether it accepts connections now (not merely the port: also past recovery)."""
        done = subprocess.run(
            [str(self.bin_dir / "pg_isready"), "-q", "-h", LOOPBACK, "-p", str(self.port),
             "-U", SUPERUSER, "-t", "1"], check=False, capture_output=True)
        return done.returncode == 0

    def crash(self) -> None:
        """`pg_ctl stop -m immediate`: every server process quits at once, no
        checkpoint; the next start recovers from the WAL."""
        self._pg_ctl_stop("immediate")

    def stop(self) -> None:
        """A clean shutdown (`-m fast`: open sessions are disconnected)."""
        self._pg_ctl_stop("fast")

    def remove(self) -> None:
        """Delete the data folder (the server must be stopped)."""
        shutil.rmtree(self.folder, ignore_errors=True)

    def log_tail(self) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return text[-LOG_TAIL_CHARS:].strip() or "(empty)"

    def _pg_ctl_stop(self, mode: str) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        subprocess.run([str(self.bin_dir / "pg_ctl"), "stop", "-D", str(self.data), "-m", mode,
                        "-w", "-t", f"{STOP_DEADLINE_S:g}"],
                       check=False, capture_output=True, **self._as_server_user())
        try:
            process.wait(STOP_DEADLINE_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise SetupError(f"PostgreSQL did not stop (-m {mode}) within "
                             f"{STOP_DEADLINE_S:g} s; killed") from None

    def _initdb(self) -> None:
        if self.user is not None:
            os.chown(self.folder, self.user.pw_uid, self.user.pw_gid)
        # --no-sync: only initdb's own files; the server itself fsyncs as usual.
        done = subprocess.run(
            [str(self.bin_dir / "initdb"), "-D", str(self.data), "-U", SUPERUSER,
             "--auth=trust", "--no-sync", "--encoding=UTF8", "--locale=C"],
            check=False, capture_output=True, timeout=INITDB_TIMEOUT_S,
            **self._as_server_user())
        if done.returncode != 0:
            output = (done.stdout + done.stderr).decode(errors="replace")[-LOG_TAIL_CHARS:]
            raise SetupError(f"initdb failed with {done.returncode}: {output.strip()}")
        self.initialized = True

    def _as_server_user(self) -> Mapping[str, Any]:
        """Popen arguments that drop from root to the server's user (none otherwise)."""
        if self.user is None:
            return {}
        environment = {**os.environ, "HOME": self.user.pw_dir, "USER": SERVER_USER,
                       "LOGNAME": SERVER_USER}
        return {"user": self.user.pw_uid, "group": self.user.pw_gid, "extra_groups": [],
                "env": environment, "cwd": str(self.folder)}
