"""`posgw center enroll`: what a new branch, or a new center process, needs.

Parsing and printing; the work is in center/enrollment.py and
center/broker_access.py. The password is printed once, on stdout, and
never stored in clear.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from posgw.cli.center_context import config_of
from posgw.cli.common import center_store, database_failed, fail

if TYPE_CHECKING:
    from posgw.center.config import CenterConfig
    from posgw.center.enrollment import PasswordOutcome

PASSWD_DEFAULT = Path("/etc/mosquitto/posgw/passwd")
ACL_DEFAULT = Path("/etc/mosquitto/posgw/acl")
#: Where deploy/gateway.example.toml expects the center's command key.
GATEWAY_COMMAND_KEY = "/etc/posgw/center-command.pub"


@click.command(short_help="Broker credentials, ACL and keys for a new branch's gateway.")
@click.argument("branch_id", required=False)
@click.argument("gateway_id", required=False)
@click.option("--center", "center_user", metavar="USER",
              help="Enroll a center process (or `center cmd`) as USER instead of a gateway: "
                   "it reads every branch and writes commands and confirmations.")
@click.option("--public-key", type=click.Path(dir_okay=False, path_type=Path),
              help="The gateway's signing.pub: also register it for BRANCH_ID.")
@click.option("--passwd", "passwd_file", type=click.Path(dir_okay=False, path_type=Path),
              default=PASSWD_DEFAULT, show_default=True,
              help="mosquitto's password_file (deploy/mosquitto/posgw.conf).")
@click.option("--acl", "acl_file", type=click.Path(dir_okay=False, path_type=Path),
              default=ACL_DEFAULT, show_default=True,
              help="mosquitto's acl_file (deploy/mosquitto/posgw.conf).")
@click.option("--new-password", is_flag=True,
              help="Replace the user's password if it has one (the old one stops working "
                   "at the broker's next reload).")
@click.option("--broker-host", metavar="HOST", help="The broker as gateways dial it "
                                                    "(default: [mqtt] host).")
@click.option("--broker-port", type=click.IntRange(1, 65535), metavar="PORT", default=8883,
              show_default=True, help="Its TLS port.")
@click.pass_context
def enroll(ctx: click.Context, branch_id: str | None, gateway_id: str | None,
           center_user: str | None, public_key: Path | None, passwd_file: Path,
           acl_file: Path, new_password: bool, broker_host: str | None,
           broker_port: int) -> None:
    """Make what a new branch's gateway needs, once:

    \b
      - its broker password (printed ONCE) and its line in --passwd
      - its ACL block in --acl: publish only on BRANCH_ID's topics, read
        only BRANCH_ID's commands and its own confirmations
      - the center's public command key and a gateway.toml snippet
      - with --public-key, its registration for BRANCH_ID

    Run it again safely: what is already in place stays, and each line says
    what changed. Then reload the broker (systemctl reload mosquitto).

    \b
    Examples:
      posgw center -c center.toml enroll B001 gw-b001-1
      posgw center -c center.toml enroll B001 gw-b001-1 --public-key gw-b001-1.pub
      posgw center -c center.toml enroll --center posgw-center-1
    """
    from posgw.center.broker_access import center_acl, gateway_acl
    from posgw.center.config import MAX_BRANCH_ID, is_identifier

    config = config_of(ctx)
    if center_user is not None:
        if branch_id or gateway_id or public_key:
            raise click.UsageError("--center takes no BRANCH_ID, GATEWAY_ID or --public-key")
        if not is_identifier(center_user):
            raise click.UsageError("--center: letters, digits, '-', '_' or '.'")
        user, block = center_user, center_acl(config.mqtt.topic_prefix, center_user)
    else:
        if not (branch_id and gateway_id):
            raise click.UsageError("give BRANCH_ID and GATEWAY_ID (or --center USER)")
        if not is_identifier(branch_id, MAX_BRANCH_ID) or not is_identifier(gateway_id):
            raise click.UsageError("BRANCH_ID and GATEWAY_ID: letters, digits, '-', '_' or '.'")
        user, block = gateway_id, gateway_acl(config.mqtt.topic_prefix, branch_id, gateway_id)
    _broker_files(user, block, passwd_file, acl_file, renew=new_password)
    if center_user is None:
        assert branch_id is not None and gateway_id is not None
        _gateway_side(config, branch_id, gateway_id, broker_host or config.mqtt.host,
                      broker_port)
        if public_key is not None:
            _register(config, gateway_id, public_key, branch_id)
    click.echo("then: systemctl reload mosquitto   (it rereads the password and ACL files)")


def _broker_files(user: str, block: str, passwd_file: Path, acl_file: Path, *,
                  renew: bool) -> None:
    from posgw.center.enrollment import set_acl_block, set_password

    try:
        outcome = set_password(passwd_file, user, renew=renew)
        acl = set_acl_block(acl_file, block)
    except OSError as exc:
        fail("center enroll", f"{exc.filename or ''}: {exc.strerror or exc}")
    _print_password(user, passwd_file, outcome)
    click.echo(f"ACL of {user}: {acl.value} in {acl_file}")


def _print_password(user: str, passwd_file: Path, outcome: PasswordOutcome) -> None:
    if outcome.password is None:
        click.echo(f"password of {user}: unchanged in {passwd_file} (--new-password to "
                   "replace it)")
        return
    click.echo(f"password of {user}: {outcome.change.value} in {passwd_file}")
    click.echo(f"  POSGW_MQTT_USERNAME={user}")
    click.echo(f"  POSGW_MQTT_PASSWORD={outcome.password}")
    click.echo("  (shown once: put both in the client's env file, mode 0600)")


def _gateway_side(config: CenterConfig, branch_id: str, gateway_id: str, host: str,
                  port: int) -> None:
    from posgw.center.enrollment import gateway_toml_snippet

    click.echo(f"center command key for {GATEWAY_COMMAND_KEY} on the gateway:")
    click.echo(_command_public_pem(config), nl=False)
    click.echo("gateway.toml (with the rest of deploy/gateway.example.toml):")
    click.echo(gateway_toml_snippet(branch_id, gateway_id, host=host, port=port,
                                    topic_prefix=config.mqtt.topic_prefix,
                                    center_public_key=GATEWAY_COMMAND_KEY), nl=False)


def _command_public_pem(config: CenterConfig) -> str:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    from posgw.center.command_key import CommandKeyError, load_command_key

    if config.command_key_path is None:
        fail("center enroll", "[center] command_key is not set: a gateway needs the center's "
                              "command key (posgw center command-key DIR makes one)")
    try:
        key = load_command_key(config.command_key_path)
    except CommandKeyError as exc:
        fail("center enroll", f"[center] command_key: {exc}")
    return key.public_key().public_bytes(Encoding.PEM,
                                         PublicFormat.SubjectPublicKeyInfo).decode("ascii")


def _register(config: CenterConfig, gateway_id: str, public_key: Path, branch_id: str) -> None:
    from sqlalchemy.exc import SQLAlchemyError

    from posgw.center.registry import RegistrationError, parse_public_key, register_key
    from posgw.center.verify import key_fingerprint

    try:
        key = parse_public_key(public_key.read_bytes(), str(public_key))
        store = center_store(config, "center", create=True)
        try:
            added = register_key(store, gateway_id, key, branch_id)
        finally:
            store.close()
    except OSError as exc:
        fail("center enroll", f"{public_key}: {exc.strerror or exc}")
    except RegistrationError as exc:
        fail("center enroll", exc)
    except SQLAlchemyError as exc:
        database_failed("center", config.database, exc)
    state = "registered" if added else "already registered"
    click.echo(f"{state}: {gateway_id} (branch {branch_id}) sha256:{key_fingerprint(key)}")
