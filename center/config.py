"""The center configuration: read once, validated once, then passed down.

`load_center_config(path)` reads a center.toml (see
`deploy/center.example.toml`), applies secrets from the environment and
returns one frozen `CenterConfig`; any problem is a ConfigError naming file,
key and reason, like the gateway's own config.

Environment variables (they win over the file, so secrets stay out of it):
POSGW_CENTER_DATABASE_URL, POSGW_MQTT_USERNAME, POSGW_MQTT_PASSWORD.

A center trusts only the gateways listed as `[[gateways]]` and those
registered by command (`posgw center gateways register`, center/registry.py):
each entry names a gateway_id, the branch_id it serves (its events must
claim that branch and arrive on that branch's topics), and the path of
that gateway's Ed25519 public key (`signing.pub` from `posgw keys
generate`). Relative paths are read from the config file's directory.

`[center] command_key` names the private key `posgw center cmd` signs
commands with and the ingest signs its confirmations with
(center/command_key.py); gateways given its public half obey only signed
commands and forget an event only once a signed confirmation names it.

`[center] quarantine_rows_per_source` bounds what one branch's topics can
fill the quarantine with (center/quarantine_cap.py); past it, refused
payloads are only counted.

`[center] max_clock_skew_s` and `max_event_age_s` bound an event's
`occurred_at`: later than now + skew, or older than the age, and it is
quarantined (a replayed or forged payload, or a gateway clock gone wrong).

`[settlement] value_days` and `credit_grace_days` say when a merchant's
net is due and how long a missing credit waits before it is a finding
(center/settlement/), in working days of `[calendar]`.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from posgw.center.calendar import WEEKDAY_NAMES, WorkingCalendar
from posgw.center.quarantine_cap import DEFAULT_ROWS_PER_SOURCE
from posgw.center.seq_gaps import DEFAULT_SETTLE_S
from posgw.center.verify import SignatureVerifier
from posgw.drivers.mqtt_config import (
    DEFAULT_KEEPALIVE_S,
    DEFAULT_SESSION_EXPIRY_S,
    MAX_SESSION_EXPIRY_S,
    MqttConfig,
    tls_file_problems,
)
from posgw.protocols.config_error import ConfigError
from posgw.protocols.contract import DEFAULT_TOPIC_PREFIX
from posgw.protocols.tables import TableReader, parse_toml, with_environment

#: Four slashes: an absolute path (three would be relative to the working directory).
DEFAULT_DATABASE = "sqlite:////var/lib/posgw/center.db"
#: A shared subscription by default, so a second center process splits the
#: stream instead of doubling it. What a broker drops meanwhile (mosquitto
#: 2.0 does not restore shared subscriptions after its own restart, and
#: answers PUBACK reason 16 until the center subscribes again) is no loss
#: now: the gateway keeps every event until the center confirms it
#: (confirm.v1) and publishes it again. "" subscribes plainly.
DEFAULT_SHARE_GROUP: str | None = "center"
#: A gateway clock this far ahead is wrong (or the payload forged); NTP keeps
#: honest clocks within a second, 5 minutes leaves room for a bad one.
DEFAULT_MAX_CLOCK_SKEW_S = 5 * 60
#: Longer than any outage the gateway's outbox is meant to ride out.
DEFAULT_MAX_EVENT_AGE_S = 30 * 24 * 3600
ENV_OVERRIDES = {
    "POSGW_CENTER_DATABASE_URL": ("center", "database"),
    "POSGW_MQTT_USERNAME": ("mqtt", "username"),
    "POSGW_MQTT_PASSWORD": ("mqtt", "password"),
}
_IDENTIFIER_EXTRA = "-_."
MAX_BRANCH_ID = 32  # schemas/*.json: branch_id maxLength


@dataclass(frozen=True, slots=True)
class RegisteredGateway:
    id: str
    public_key_path: str
    public_key: Ed25519PublicKey = field(repr=False, compare=False)
    branch_id: str = ""  # always set from center.toml: [[gateways]] branch_id is required


@dataclass(frozen=True, slots=True)
class CasesConfig:
    """`[cases]`: the console's freeze-case desk (center/web/cases.py)."""

    #: Released funds reach the merchant in "typically 3-5 days" (issue 18):
    #: the customer is promised the far end.
    reclear_working_days: int = 5
    #: A return to the card goes through the issuer: "about 15 working days".
    return_working_days: int = 15
    #: One evidence file at most this big (a scanned letter, a few photos).
    max_evidence_bytes: int = 10 * 1024 * 1024
    #: Files uploaded per case at most: the database holds them.
    max_evidence_files: int = 20
    #: How long an action waits for the branch's reply before the page shows
    #: "waiting" (the ingest stores the reply whenever it comes); 0: no wait.
    reply_wait_s: int = 5


DEFAULT_CASES = CasesConfig()


@dataclass(frozen=True, slots=True)
class WebConfig:
    """`[web]`: the console (`posgw center web`, center/web/)."""

    listen: str = "127.0.0.1:8080"
    #: A working shift: staff sign in again the next day.
    session_ttl_s: int = 8 * 3600
    #: Wrong passwords in a row before the account is locked (OWASP: a handful).
    max_failed_logins: int = 5
    lockout_s: int = 15 * 60


DEFAULT_WEB = WebConfig()


@dataclass(frozen=True, slots=True)
class SettlementConfig:
    """`[settlement]`: when a merchant's money is due (center/settlement/)."""

    #: A day's net is due on the account T + this many working days
    #: ([calendar]); T+1 is the common card-acquiring promise.
    value_days: int = 1
    #: Working days after the due date before an absent or short credit
    #: becomes a finding: a bank's booking can lag its value date by a day.
    credit_grace_days: int = 1


DEFAULT_SETTLEMENT = SettlementConfig()


@dataclass(frozen=True, slots=True)
class CenterConfig:
    database: str
    mqtt: MqttConfig
    gateways: tuple[RegisteredGateway, ...]
    source: str = ""
    max_clock_skew_s: int = DEFAULT_MAX_CLOCK_SKEW_S
    max_event_age_s: int = DEFAULT_MAX_EVENT_AGE_S
    #: `[center] command_key`: the private key `posgw center cmd` signs
    #: commands and the ingest signs confirmations with (center/command_key.py);
    #: the queries never need it.
    command_key_path: Path | None = None
    web: WebConfig = DEFAULT_WEB
    #: `[cases]`: the console's cases desk (center/web/cases.py).
    cases: CasesConfig = DEFAULT_CASES
    #: [center] quarantine_rows_per_source (center/quarantine_cap.py).
    quarantine_rows_per_source: int = DEFAULT_ROWS_PER_SOURCE
    #: [center] seq_gap_settle_s: how long a gateway's seq may be missing
    #: (out of order, redelivered) before it counts as a gap (center/seq_gaps.py).
    seq_gap_settle_s: int = DEFAULT_SETTLE_S
    #: `[calendar]`: the working days promised dates are counted in.
    calendar: WorkingCalendar = field(default_factory=WorkingCalendar.of)
    settlement: SettlementConfig = DEFAULT_SETTLEMENT

    def verifier(self) -> SignatureVerifier:
        """Trusts exactly center.toml's gateways, each with its own key (the
        database's registrations are added by center.registry)."""
        return SignatureVerifier({gateway.id: gateway.public_key for gateway in self.gateways},
                                 branches={gateway.id: gateway.branch_id
                                           for gateway in self.gateways})


def default_client_id(share_group: str | None, username: str | None) -> str:
    """The MQTT user name when there is one: the deployed broker makes every
    client's id its user name anyway (use_username_as_clientid), so only
    the holder of the center's password gets its session. Without one, a
    random suffix: an id anyone could work out (group and host name) is one
    anyone could take the session with (issue 17, finding 4). Such an id
    changes at every start, so the broker's queue for the previous one is
    not found again; the gateways publish what the center did not confirm."""
    if username:
        return username
    return f"posgw-center-{share_group or 'solo'}-{socket.gethostname()}-{secrets.token_hex(6)}"


def load_center_config(path: str | Path,
                       environ: Mapping[str, str] | None = None) -> CenterConfig:
    """Read, merge environment secrets, validate, load the gateway keys."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError("(file)", exc.strerror or "cannot read", source) from None
    merged = with_environment(parse_toml(text, source, error=ConfigError),
                              os.environ if environ is None else environ,
                              ENV_OVERRIDES, keep_empty=False)
    return parse_center_config(merged, source, base_dir=Path(path).resolve().parent)


def parse_center_config(table: Mapping[str, Any], source: str = "",
                        base_dir: Path | None = None) -> CenterConfig:
    root = TableReader(table, "", source, error=ConfigError)
    center = root.sub("center")
    database = center.text("database", DEFAULT_DATABASE) or DEFAULT_DATABASE
    _check_database_url(center, database)
    skew = center.integer("max_clock_skew_s", DEFAULT_MAX_CLOCK_SKEW_S, 1, 24 * 3600)
    age = center.integer("max_event_age_s", DEFAULT_MAX_EVENT_AGE_S, 60, 10 * 365 * 24 * 3600)
    command_key = center.text("command_key", None)
    rows_per_source = center.integer("quarantine_rows_per_source", DEFAULT_ROWS_PER_SOURCE,
                                     1, 10_000_000)
    settle = center.integer("seq_gap_settle_s", DEFAULT_SETTLE_S, 1, 24 * 3600)
    center.reject_unknown()
    config = CenterConfig(
        database=database,
        mqtt=_mqtt(root.sub("mqtt")),
        gateways=_gateways(root, base_dir or Path.cwd()),
        source=source,
        max_clock_skew_s=skew,
        max_event_age_s=age,
        command_key_path=(base_dir or Path.cwd()) / command_key if command_key else None,
        web=_web(root.sub("web")),
        cases=_cases(root.sub("cases")),
        quarantine_rows_per_source=rows_per_source,
        seq_gap_settle_s=settle,
        calendar=_calendar(root.sub("calendar")),
        settlement=_settlement(root.sub("settlement")),
    )
    root.reject_unknown()
    return config


def _mqtt(reader: TableReader) -> MqttConfig:
    share_group = reader.text("share_group", DEFAULT_SHARE_GROUP or "")
    if share_group and not is_identifier(share_group):
        reader.fail("share_group", "letters, digits, '-', '_' or '.' (it is part of a topic "
                                   "filter); \"\" for a plain subscription")
    config = MqttConfig(
        host=reader.text("host", "127.0.0.1") or "127.0.0.1",
        port=reader.integer("port", 1883, 1, 65535),
        topic_prefix=_topic_prefix(reader),
        share_group=share_group or None,
        client_id=reader.text("client_id", "") or default_client_id(
            share_group, reader.text("username", None)),
        username=reader.text("username", None),
        password=reader.text("password", None),
        tls_ca=reader.text("tls_ca", None),
        tls_cert=reader.text("tls_cert", None),
        tls_key=reader.text("tls_key", None),
        keepalive=reader.integer("keepalive", DEFAULT_KEEPALIVE_S, 5, 3600),
        session_expiry_s=reader.integer("session_expiry_s", DEFAULT_SESSION_EXPIRY_S, 1,
                                        MAX_SESSION_EXPIRY_S),
    )
    if (config.tls_cert is None) != (config.tls_key is None):
        reader.fail("tls_cert", "tls_cert and tls_key go together")
    for key, problem in tls_file_problems(config):
        reader.fail(key, problem)
    if config.password is not None and config.username is None:
        reader.fail("password", "a password needs a username (or POSGW_MQTT_USERNAME)")
    reader.reject_unknown()
    return config


def _web(reader: TableReader) -> WebConfig:
    listen = reader.text("listen", DEFAULT_WEB.listen) or DEFAULT_WEB.listen
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        reader.fail("listen", f"HOST:PORT, e.g. 127.0.0.1:8080; got {listen!r}")
    config = WebConfig(
        listen=listen,
        session_ttl_s=reader.integer("session_ttl_s", DEFAULT_WEB.session_ttl_s, 60, 7 * 86400),
        max_failed_logins=reader.integer("max_failed_logins", DEFAULT_WEB.max_failed_logins,
                                         1, 100),
        lockout_s=reader.integer("lockout_s", DEFAULT_WEB.lockout_s, 1, 7 * 86400),
    )
    reader.reject_unknown()
    return config


def _cases(reader: TableReader) -> CasesConfig:
    default = DEFAULT_CASES
    config = CasesConfig(
        reclear_working_days=reader.integer("reclear_working_days",
                                            default.reclear_working_days, 0, 60),
        return_working_days=reader.integer("return_working_days",
                                           default.return_working_days, 0, 120),
        max_evidence_bytes=reader.integer("max_evidence_bytes", default.max_evidence_bytes,
                                          1024, 100 * 1024 * 1024),
        max_evidence_files=reader.integer("max_evidence_files", default.max_evidence_files,
                                          1, 1000),
        reply_wait_s=reader.integer("reply_wait_s", default.reply_wait_s, 0, 60),
    )
    reader.reject_unknown()
    return config


def _calendar(reader: TableReader) -> WorkingCalendar:
    """`holidays = ["2027-01-01", ...]`, `weekend = ["sat", "sun"]` (the default)."""
    holidays: list[date] = []
    for text in reader.array("holidays"):
        try:
            holidays.append(date.fromisoformat(text))
        except (TypeError, ValueError):
            reader.fail("holidays", f"dates as YYYY-MM-DD; got {text!r}")
    names = reader.array("weekend") if "weekend" in reader else ["sat", "sun"]
    if any(name not in WEEKDAY_NAMES for name in names):
        reader.fail("weekend", f"day names among {', '.join(WEEKDAY_NAMES)}; got {names!r}")
    if len(set(names)) == len(WEEKDAY_NAMES):
        reader.fail("weekend", "leaves no working day")
    reader.reject_unknown()
    return WorkingCalendar.of(holidays, (WEEKDAY_NAMES.index(name) for name in names))


def _settlement(reader: TableReader) -> SettlementConfig:
    config = SettlementConfig(
        value_days=reader.integer("value_days", DEFAULT_SETTLEMENT.value_days, 0, 30),
        credit_grace_days=reader.integer("credit_grace_days",
                                         DEFAULT_SETTLEMENT.credit_grace_days, 0, 30),
    )
    reader.reject_unknown()
    return config


def _topic_prefix(reader: TableReader) -> str:
    prefix = (reader.text("topic_prefix", DEFAULT_TOPIC_PREFIX) or "").strip("/")
    if not prefix or any(c in prefix for c in "+#") or prefix.startswith("$"):
        reader.fail("topic_prefix", f"a topic without wildcards or a leading '$'; got {prefix!r}")
    return prefix


def _gateways(root: TableReader, base_dir: Path) -> tuple[RegisteredGateway, ...]:
    # None is allowed: the gateways may all be registered by command.
    entries = root.array("gateways")
    gateways: list[RegisteredGateway] = []
    for index, entry in enumerate(entries):
        reader = TableReader(entry, f"gateways[{index}]", root.source, error=root.error)
        gateway = _gateway(reader, base_dir)
        if any(seen.id == gateway.id for seen in gateways):
            reader.fail("id", f"{gateway.id} is registered twice")
        gateways.append(gateway)
    return tuple(gateways)


def _gateway(reader: TableReader, base_dir: Path) -> RegisteredGateway:
    gateway_id = reader.text("id") or ""
    if not is_identifier(gateway_id):
        reader.fail("id", "required: the gateway_id the gateway signs with "
                          "(letters, digits, '-', '_' or '.')")
    branch_id = reader.text("branch_id") or ""
    if not is_identifier(branch_id, MAX_BRANCH_ID):
        reader.fail("branch_id", "required: the branch this gateway serves, as its "
                                 "[gateway] branch_id (letters, digits, '-', '_' or '.', at "
                                 f"most {MAX_BRANCH_ID}); its events must claim it")
    path_text = reader.text("public_key") or ""
    if not path_text:
        reader.fail("public_key", "required: path to the gateway's signing.pub")
    path = (base_dir / path_text).resolve()
    reader.reject_unknown()
    return RegisteredGateway(gateway_id, str(path), _public_key(reader, path), branch_id)


def _public_key(reader: TableReader, path: Path) -> Ed25519PublicKey:
    try:
        key = load_pem_public_key(path.read_bytes())
    except OSError as exc:
        reader.fail("public_key", f"{path}: {exc.strerror or 'cannot read'}")
    except (ValueError, TypeError):
        reader.fail("public_key", f"{path}: not a PEM public key")
    if not isinstance(key, Ed25519PublicKey):
        reader.fail("public_key", f"{path}: not an Ed25519 public key")
    return key


def _check_database_url(reader: TableReader, url: str) -> None:
    # Checked here, not at first connect: a typo should stop start-up with a
    # clear line. Only the scheme is checked; the URL may hold a password.
    if not url.startswith(("sqlite:///", "postgresql")):
        reader.fail("database", "must be sqlite:////ABSOLUTE/PATH or "
                                "postgresql+psycopg://USER@HOST/DB")


def is_identifier(value: str, max_length: int = 64) -> bool:
    return bool(value) and len(value) <= max_length and all(
        c.isascii() and (c.isalnum() or c in _IDENTIFIER_EXTRA) for c in value)
