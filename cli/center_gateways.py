"""`posgw center gateways register | list | revoke` and `posgw center quarantine`.

Which gateway keys the center trusts, and what it refused. The work is in
center/registry.py and center/quarantine.py, imported lazily (DESIGN.md:
only the CLI imports center, and only when asked). Output shows key
fingerprints and quarantine reasons, never a payload.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from posgw.cli.center_context import config_of
from posgw.cli.common import (
    EXIT_NOT_FOUND,
    center_store,
    database_failed,
    fail,
    plain_table,
    printable,
)

if TYPE_CHECKING:
    from posgw.center.config import CenterConfig
    from posgw.center.db import CenterStore
    from posgw.center.registry import TrustedKey

#: Entries `quarantine` lists by default.
DEFAULT_RECENT = 20


@click.group(short_help="Register, list or revoke the gateway keys the center trusts.")
def gateways() -> None:
    """The gateway public keys the center trusts: those in center.toml
    ([[gateways]]) and those registered here, stored in the center database.
    A running center picks up a registration at once and a revocation within
    a few seconds, without a restart. A key is never trusted on first use.

    \b
      gateways register GW_ID signing.pub --branch B   trust this key for GW_ID of branch B
      gateways list [--json]                every key, its fingerprint and state
      gateways revoke GW_ID [--fingerprint F]   stop trusting GW_ID (or one key)
    """


@gateways.command("register")
@click.argument("gateway_id")
@click.argument("public_key", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--branch", "branch_id", required=True, metavar="BRANCH_ID",
              help="The branch this gateway serves (its [gateway] branch_id): its events "
                   "must claim it and arrive on its topics, or they are quarantined.")
@click.pass_context
def gateways_register(ctx: click.Context, gateway_id: str, public_key: Path,
                      branch_id: str) -> None:
    """Trust PUBLIC_KEY (the gateway's signing.pub, Ed25519 PEM) for GATEWAY_ID,
    speaking for BRANCH_ID only.

    Compare the printed fingerprint with `posgw keys show` on the gateway
    before relying on it. A gateway may hold several keys (a rotation keeps
    the old one until the gateway's outbox has drained).
    """
    from sqlalchemy.exc import SQLAlchemyError

    from posgw.center.registry import RegistrationError, parse_public_key, register_key
    from posgw.center.verify import key_fingerprint

    try:
        key = parse_public_key(_read(public_key), str(public_key))
        store = _writable_store(ctx)
        try:
            added = register_key(store, gateway_id, key, branch_id)
        finally:
            store.close()
    except RegistrationError as exc:
        fail("center gateways register", exc)
    except SQLAlchemyError as exc:
        _database_failed(_center_config(ctx), exc)
    state = "registered" if added else "already registered"
    click.echo(f"{state}: {gateway_id} (branch {branch_id}) sha256:{key_fingerprint(key)}")


@gateways.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array instead of a table.")
@click.pass_context
def gateways_list(ctx: click.Context, as_json: bool) -> None:
    """Every key the center knows: gateway, branch, fingerprint (SHA-256 of
    the DER public key, as `posgw keys show` prints it), where it comes from,
    when it was registered, whether it is revoked, and the gateway's newest
    seq and how many of its seqs never arrived (missing longer than
    seq_gap_settle_s; "lost" once given up on after a day)."""
    from sqlalchemy.exc import SQLAlchemyError

    from posgw.center.registry import trusted_keys
    from posgw.center.seq_gaps import seq_report

    config = _center_config(ctx)
    store = _existing_store(ctx)
    try:
        keys, seqs = trusted_keys(store, config.gateways), seq_report(store)
    except SQLAlchemyError as exc:
        _database_failed(config, exc)
    finally:
        if store is not None:
            store.close()
    if as_json:
        click.echo(json.dumps([_key_json(key, seqs) for key in keys], indent=2))
        return
    click.echo(plain_table(
        ("gateway", "branch", "fingerprint (sha256)", "source", "registered_at", "state",
         "seq", "missing"),
        [(key.gateway_id, key.branch_id or "(none)", key.fingerprint, key.source,
          _time(key.registered_at) or "",
          f"revoked {_time(key.revoked_at)}" if key.revoked_at else "trusted",
          *_seq_cells(seqs.get(key.gateway_id)))
         for key in keys]))
    if not keys:
        click.echo("no gateway is trusted yet: posgw center -c center.toml gateways register "
                   "GW_ID signing.pub --branch BRANCH_ID", err=True)


@gateways.command("revoke")
@click.argument("gateway_id")
@click.option("--fingerprint", metavar="SHA256",
              help="Revoke only this key (hex, as `gateways list` shows it); "
                   "by default every key of GATEWAY_ID.")
@click.pass_context
def gateways_revoke(ctx: click.Context, gateway_id: str, fingerprint: str | None) -> None:
    """Stop trusting GATEWAY_ID's keys, center.toml's included: its events
    are then quarantined as `revoked`. Exit status 1 when nothing was
    trusted to revoke."""
    from sqlalchemy.exc import SQLAlchemyError

    from posgw.center.registry import revoke

    config = _center_config(ctx)
    store = _writable_store(ctx)
    try:
        revoked = revoke(store, gateway_id, config.gateways,
                         fingerprint.removeprefix("sha256:").lower() if fingerprint else None)
    except SQLAlchemyError as exc:
        _database_failed(config, exc)
    finally:
        store.close()
    if not revoked:
        fail("center gateways revoke", f"no trusted key of {gateway_id!r} to revoke",
             EXIT_NOT_FOUND)
    for print_ in revoked:
        click.echo(f"revoked: {gateway_id} sha256:{print_}")


@click.command(short_help="Quarantined payloads: counts by reason and the latest ones.")
@click.option("--recent", "limit", type=click.IntRange(min=0), default=DEFAULT_RECENT,
              show_default=True, help="How many of the latest entries to list.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
@click.pass_context
def quarantine(ctx: click.Context, limit: int, as_json: bool) -> None:
    """What the center refused, and why: counts per kind (unregistered,
    revoked, bad_signature, replay, future, stale, malformed, not_json,
    not_storable), then the latest entries with their reasons. Payloads are
    not shown: they come from untrusted senders."""
    from sqlalchemy.exc import SQLAlchemyError

    from posgw.center.quarantine import counts_by_kind, overflow, recent

    store = _existing_store(ctx, required=True)
    assert store is not None  # required: a missing database has exited already
    try:
        with store.session() as session:
            counts, entries = counts_by_kind(session), recent(session, limit)
            not_kept = overflow(session)
    except SQLAlchemyError as exc:
        _database_failed(_center_config(ctx), exc)
    finally:
        store.close()
    if as_json:  # JSON escapes control characters itself
        click.echo(json.dumps({"counts": counts, "not_kept": [
            {"source": source, "kind": kind, "count": n}
            for (source, kind), n in not_kept.items()], "recent": [
            {"id": e.id, "received_at": _time(e.received_at), "kind": e.kind,
             "topic": e.topic, "reason": e.reason} for e in entries]}, indent=2))
        return
    click.echo(plain_table(("kind", "count"), [(kind, str(n)) for kind, n in counts.items()],
                           title="quarantined", right=[1]))
    if not_kept:
        click.echo(plain_table(("source", "kind", "count"),
                               [(printable(source), kind, str(n))
                                for (source, kind), n in not_kept.items()],
                               title="counted only, past quarantine_rows_per_source", right=[2]))
    # Topics (and reasons naming them) are chosen by whoever published.
    click.echo(plain_table(("id", "received_at", "kind", "topic", "reason"),
                           [(str(e.id), _time(e.received_at) or "", e.kind, printable(e.topic),
                             printable(e.reason)) for e in entries],
                           title=f"latest {len(entries)}"))


# --- shared -----------------------------------------------------------------


def _center_config(ctx: click.Context) -> CenterConfig:
    return config_of(ctx)


def _writable_store(ctx: click.Context) -> CenterStore:
    """Registration may precede the center's first run: tables are created."""
    return center_store(_center_config(ctx), "center", create=True)


def _existing_store(ctx: click.Context, *, required: bool = False) -> CenterStore | None:
    """The database as it is (read-only commands never create it); None when
    it does not exist yet and is not `required`."""
    from sqlalchemy.exc import SQLAlchemyError

    from posgw.center.db import CenterStore

    config = _center_config(ctx)
    try:
        return CenterStore(config.database, create=False)
    except FileNotFoundError as exc:
        if not required:
            return None
        _database_failed(config, exc)
    except (SQLAlchemyError, OSError) as exc:
        _database_failed(config, exc)


def _database_failed(config: CenterConfig, exc: BaseException) -> NoReturn:
    database_failed("center", config.database, exc)


def _read(path: Path) -> bytes:
    from posgw.center.registry import RegistrationError

    try:
        return path.read_bytes()
    except OSError as exc:
        raise RegistrationError(f"{path}: {exc.strerror or 'cannot read'}") from None


def _key_json(key: TrustedKey, seqs: dict[str, tuple[int, int, int]]) -> dict[str, Any]:
    missing, lost, newest = seqs.get(key.gateway_id, (0, 0, None))
    return {"gateway_id": key.gateway_id, "branch_id": key.branch_id,
            "fingerprint": key.fingerprint, "source": key.source,
            "registered_at": _time(key.registered_at), "revoked_at": _time(key.revoked_at),
            "trusted": key.revoked_at is None, "newest_seq": newest,
            "seqs_missing": missing, "seqs_lost": lost}


def _seq_cells(seqs: tuple[int, int, int] | None) -> tuple[str, str]:
    """(newest seq, missing: what never arrived, and what was given up on)."""
    if seqs is None:
        return "", ""
    missing, lost, newest = seqs
    return str(newest), f"{missing}" + (f" (+{lost} lost)" if lost else "")


def _time(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None
