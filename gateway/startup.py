"""What `posgw run` checks and opens before it serves, each failure a
ConfigError naming the key at fault.

A port another process holds, a database folder that is missing, a
PostgreSQL role not created yet, a keys folder others may enter: the
operator has to change something, so the daemon says what in one line
(`gateway.toml: listeners[0].bind: 127.0.0.1:9001 is in use ...`) and exits
2, which the unit's `RestartPreventExitStatus=2` keeps systemd from
retrying every few seconds. Each error is translated here, where the key it
comes from is known; the daemon only calls these in its start-up order.
"""

from __future__ import annotations

import errno
import logging
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from posgw.drivers.database_checks import database_folder_problem, database_refusal
from posgw.drivers.mqtt_tls import tls_problem
from posgw.drivers.private_files import folder_problem, make_private_folder
from posgw.gateway.config import GatewayConfig
from posgw.gateway.security.keys import (
    SIGNING_KEY_FILE,
    TOKEN_KEY_FILE,
    GatewayKeys,
    KeyFileError,
    generate_keys,
    load_keys,
    refuse_loose_folder,
)
from posgw.gateway.store import Store, StoreError
from posgw.protocols.config_error import ConfigError

log = logging.getLogger(__name__)

DATABASE_KEY = "gateway.database"
KEYS_KEY = "keys.dir"


def refused(config: GatewayConfig, key: str, reason: str) -> ConfigError:
    return ConfigError(key, reason, config.source)


# -- the broker's TLS files -------------------------------------------------------


def check_mqtt_tls(config: GatewayConfig) -> None:
    """The `[mqtt]` TLS files make a TLS context (PEM, the key the certificate's)."""
    problem = tls_problem(config.mqtt)
    if problem is not None:
        key, reason = problem
        raise refused(config, f"mqtt.{key}", reason)


# -- the database ----------------------------------------------------------------


def open_store(config: GatewayConfig) -> Store:
    """The store of `[gateway] database` (blocking); a SQLite folder the daemon
    cannot write, a server that refuses the role or database: ConfigError (a
    server not reachable now: its DatabaseUnavailable subclass)."""
    problem = database_folder_problem(config.database)
    if problem is not None:
        raise refused(config, DATABASE_KEY, problem)
    try:
        return Store(config.database, synchronous=config.sqlite_synchronous)
    except StoreError as exc:  # e.g. a schema version this posgw cannot migrate
        raise refused(config, DATABASE_KEY, str(exc)) from None
    except (SQLAlchemyError, OSError) as exc:
        raise database_refusal(DATABASE_KEY, exc, config.source) from None


# -- the keys folder -------------------------------------------------------------


def open_keys(config: GatewayConfig) -> GatewayKeys:
    """The gateway's keys, created on first start in a new 0700 folder (logged:
    the center must learn the new public key)."""
    folder = Path(config.keys_dir)
    with keys_folder(config):
        if not folder.exists():
            _create_keys_folder(config, folder)
        elif problem := folder_problem(folder, write=False):
            raise refused(config, KEYS_KEY, problem)
        refuse_loose_folder(folder)
        if not (folder / SIGNING_KEY_FILE).exists() and not (folder / TOKEN_KEY_FILE).exists():
            public = generate_keys(folder)
            log.warning("generated new gateway keys in %s; register %s at the center",
                        folder, public)
        return load_keys(folder)


def _create_keys_folder(config: GatewayConfig, folder: Path) -> None:
    parent = folder.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent  # make_private_folder creates the missing ones
    problem = folder_problem(parent, write=True)
    if problem is not None:
        raise refused(config, KEYS_KEY, f"cannot create {folder}: {problem}")
    make_private_folder(folder)


@contextmanager
def keys_folder(config: GatewayConfig) -> Iterator[None]:
    """Key file problems (a key others may read, a vault folder others may
    enter, a file the daemon cannot read) as `keys.dir: FILE: reason`."""
    try:
        yield
    except KeyFileError as exc:
        raise refused(config, KEYS_KEY, str(exc)) from None
    except OSError as exc:
        raise refused(config, KEYS_KEY, f"{exc.filename or config.keys_dir}: "
                                        f"{exc.strerror or exc}") from None


# -- addresses ---------------------------------------------------------------------


def bind_refused(config: GatewayConfig, key: str, address: str, exc: OSError) -> ConfigError:
    """`address` (HOST:PORT) could not be bound: why, in an operator's words."""
    host, _, port = address.rpartition(":")
    if isinstance(exc, socket.gaierror):
        reason = f"{address}: host {host!r} does not resolve ({exc.strerror})"
    elif exc.errno == errno.EADDRINUSE:
        reason = (f"{address} is in use by another process (`ss -ltnp 'sport = :{port}'` "
                  "shows which; another posgw run?)")
    elif exc.errno == errno.EADDRNOTAVAIL:
        reason = (f"{address}: {host} is not an address of this machine "
                  "(`ip -brief address` lists them; 0.0.0.0 is every one)")
    elif exc.errno == errno.EACCES:
        reason = f"{address}: ports below 1024 need privileges the daemon has not; use 1024 up"
    else:
        reason = f"{address}: {exc.strerror or exc}"
    return refused(config, key, reason)
