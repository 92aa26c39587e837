"""The gateway configuration: read once, validated once, then passed down.

`load_config(path)` reads the TOML file (see `deploy/gateway.example.toml`),
applies secrets from the environment, and returns one frozen
`GatewayConfig`; any problem is a ConfigError naming file, key and reason.

Environment variables (they win over the file, so secrets stay out of it):
POSGW_DATABASE_URL, POSGW_MQTT_USERNAME, POSGW_MQTT_PASSWORD,
POSGW_KEYS_DIR.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from posgw.drivers.mqtt_config import DEFAULT_KEEPALIVE_S, MqttConfig, tls_file_problems
from posgw.drivers.session_limits import SessionLimits
from posgw.gateway.case_policy import DEFAULT_EXPIRE_AFTER, DEFAULT_FIRST_RESPONSE, CasePolicy
from posgw.gateway.profiles import load_profile
from posgw.gateway.risk import RiskSettings, parse_risk_settings
from posgw.gateway.security.command_auth import CommandKeyError, load_center_public_key
from posgw.protocols.config_error import ConfigError
from posgw.protocols.contract import DEFAULT_TOPIC_PREFIX
from posgw.protocols.iso8583.errors import SpecError
from posgw.protocols.tables import TableReader, parse_toml, with_environment

DEFAULT_DATABASE = "sqlite:////var/lib/posgw/gateway.db"
DEFAULT_KEYS_DIR = "/var/lib/posgw/keys"
#: Stand-in approvals up to 5,000.00 in minor units (DESIGN.md example).
DEFAULT_FLOOR_LIMIT = 500_000
#: Upstream answer wait; acquirers commonly allow 30 s before reversal.
DEFAULT_UPSTREAM_TIMEOUT_S = 30
DEFAULT_OUTBOX_CAP = 100_000
#: `[[listeners]] max_terminals`: new ids a listener registers on first contact
#: (with `register_unknown`); a branch has tens of terminals.
DEFAULT_MAX_TERMINALS = 64
#: `[forward] confirm_timeout_s`: a published event the center has not
#: confirmed by then is published again. Sized to a center briefly slow (a
#: deploy, a batch behind a backlog), not to a broker crash going unnoticed
#: for hours; sooner would mostly send repeats of what it is still storing.
DEFAULT_CONFIRM_TIMEOUT_S = 60
#: `[forward] center_silent_after_s`: events published and unconfirmed this
#: long say "the center is silent" (log, status, metric): five timeouts, past
#: any deploy, short enough for an operator to act the same shift.
DEFAULT_CENTER_SILENT_AFTER_S = 300
#: `[commands] max_age_s`: a command issued longer ago is refused as stale.
#: Five minutes: `posgw center cmd` is answered in seconds, and a gateway
#: offline for longer should not act on what the center decided meanwhile.
DEFAULT_COMMAND_MAX_AGE_S = 300
#: `[commands] max_ahead_s`: allowance for the center's clock running ahead.
DEFAULT_COMMAND_MAX_AHEAD_S = 60
#: `[store] keep_delivered_days`: delivered outbox rows are kept this long
#: (to look into what was sent), then pruned.
DEFAULT_KEEP_DELIVERED_DAYS = 7
#: Without `[cases] evidence_dir`: next to a SQLite database, else here.
DEFAULT_EVIDENCE_DIR = "/var/lib/posgw/evidence"
#: A receipt scan or a letter; anything bigger is a mistake on a branch machine's disk.
DEFAULT_EVIDENCE_MAX_BYTES = 25 * 1024 * 1024
ENV_OVERRIDES = {
    "POSGW_DATABASE_URL": ("gateway", "database"),
    "POSGW_MQTT_USERNAME": ("mqtt", "username"),
    "POSGW_MQTT_PASSWORD": ("mqtt", "password"),
    "POSGW_KEYS_DIR": ("keys", "dir"),
}


@dataclass(frozen=True, slots=True)
class UpstreamConfig:
    mode: str = "standin"  # "standin" or "iso8583"
    floor_limit: int = DEFAULT_FLOOR_LIMIT
    host: str | None = None  # "10.0.0.5:5000" when mode = "iso8583"
    profile: str = "iso87-binary"
    timeout_s: int = DEFAULT_UPSTREAM_TIMEOUT_S
    #: `[upstream.refund_limits]`: terminal id -> the largest refund stand-in
    #: approves for it (minor units). A terminal not named gets no refund in stand-in.
    refund_limits: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ListenerConfig:
    """IP terminals dial in here; each is identified by field 41.

    It serves the ids in `allow`; new ids register on first contact only when
    `register_unknown` says so, and then at most `max_terminals` of them.
    """

    bind: str
    profile: str
    allow: tuple[str, ...] = ()
    register_unknown: bool = False
    max_terminals: int = DEFAULT_MAX_TERMINALS
    sessions: SessionLimits = field(default_factory=SessionLimits)


@dataclass(frozen=True, slots=True)
class TerminalConfig:
    id: str
    driver: str  # "serial", "usb" or "tcp"
    profile: str
    merchant_id: str = ""
    port: str | None = None  # serial: /dev/... path
    usb: str | None = None  # "0b00:0054"
    serial_number: str | None = None
    overrides: Mapping[str, Any] = field(default_factory=dict)  # baud, parity, ...


@dataclass(frozen=True, slots=True)
class CasesConfig:
    """`[cases]`: freeze case deadlines and where evidence files are kept."""

    policy: CasePolicy = field(default_factory=CasePolicy)
    evidence_dir: str = DEFAULT_EVIDENCE_DIR
    evidence_max_bytes: int = DEFAULT_EVIDENCE_MAX_BYTES


@dataclass(frozen=True, slots=True)
class ForwardConfig:
    """`[forward]`: how long the center may take to confirm what it was sent."""

    confirm_timeout_s: int = DEFAULT_CONFIRM_TIMEOUT_S
    center_silent_after_s: int = DEFAULT_CENTER_SILENT_AFTER_S


@dataclass(frozen=True, slots=True)
class CommandsConfig:
    """`[commands]`: who may command this gateway, and how long a command holds."""

    #: Obey commands nobody signed: anyone who can publish on the broker
    #: commands the gateway. Only without `[keys] center_public_key`, which
    #: must then be absent on purpose (the gateway refuses to start otherwise).
    insecure_obey_unsigned: bool = False
    max_age_s: int = DEFAULT_COMMAND_MAX_AGE_S
    max_ahead_s: int = DEFAULT_COMMAND_MAX_AHEAD_S


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    branch_id: str
    gateway_id: str
    database: str
    mqtt: MqttConfig
    upstream: UpstreamConfig
    listeners: tuple[ListenerConfig, ...]
    terminals: tuple[TerminalConfig, ...]
    keys_dir: str
    outbox_cap: int = DEFAULT_OUTBOX_CAP
    #: Test-only: reach emulated USB devices through a relay ("relay:HOST:PORT").
    usb_backend: str | None = None
    risk: RiskSettings = field(default_factory=RiskSettings)
    #: SQLite `PRAGMA synchronous`; FULL unless a benchmark asks otherwise.
    sqlite_synchronous: str = "FULL"
    #: "HOST:PORT" of the Prometheus endpoint (`[metrics] bind`); None: not served.
    metrics_bind: str | None = None
    #: `[logging] format`: "text" or "json" (one object per line).
    log_format: str = "text"
    cases: CasesConfig = field(default_factory=CasesConfig)
    #: `[gateway] cpus`: the CPUs the daemon's threads may run on; () = any.
    cpus: tuple[int, ...] = ()
    #: `[keys] center_public_key`: when set, only commands signed with it (or
    #: with this gateway's own key) are obeyed (gateway/security/command_auth.py),
    #: and an event is done only once a confirmation signed with it names it.
    center_public_key: str | None = None
    forward: ForwardConfig = field(default_factory=ForwardConfig)
    commands: CommandsConfig = field(default_factory=CommandsConfig)
    #: `[store] keep_delivered_days`: delivered outbox rows older than this are pruned.
    keep_delivered_days: int = DEFAULT_KEEP_DELIVERED_DAYS
    source: str = ""


def load_config(path: str | Path, environ: Mapping[str, str] | None = None) -> GatewayConfig:
    """Read, merge environment secrets, validate."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError("(file)", exc.strerror or "cannot read", source) from None
    table = with_environment(parse_toml(text, source, error=ConfigError),
                             os.environ if environ is None else environ,
                             ENV_OVERRIDES, keep_empty=True)
    return parse_config(table, source)


def parse_config(table: Mapping[str, Any], source: str = "") -> GatewayConfig:
    root = TableReader(table, "", source, error=ConfigError)
    gateway = root.sub("gateway")
    store = root.sub("store")
    testing = root.sub("testing")
    keys = root.sub("keys")
    cases = root.sub("cases")
    metrics, logs = root.sub("metrics"), root.sub("logging")
    forward = root.sub("forward")
    commands = root.sub("commands")
    config = GatewayConfig(
        branch_id=_identifier(gateway, "branch_id"),
        gateway_id=_identifier(gateway, "gateway_id"),
        database=gateway.text("database", DEFAULT_DATABASE) or DEFAULT_DATABASE,
        mqtt=_mqtt(root.sub("mqtt")),
        upstream=_upstream(root.sub("upstream")),
        listeners=tuple(_listener(TableReader(t, f"listeners[{i}]", source, error=ConfigError))
                        for i, t in enumerate(root.array("listeners"))),
        terminals=tuple(_terminal(TableReader(t, f"terminals[{i}]", source, error=ConfigError))
                        for i, t in enumerate(root.array("terminals"))),
        keys_dir=keys.text("dir", DEFAULT_KEYS_DIR) or DEFAULT_KEYS_DIR,
        outbox_cap=store.integer("outbox_cap", DEFAULT_OUTBOX_CAP, 1),
        usb_backend=testing.text("usb_backend", None),
        risk=parse_risk_settings(root.raw("risk", {}), source),
        sqlite_synchronous=store.choice("sqlite_synchronous", ("FULL", "EXTRA", "NORMAL"),
                                        "FULL"),
        metrics_bind=_optional_host_port(metrics, "bind"),
        log_format=logs.choice("format", ("text", "json"), "text"),
        cases=_cases(cases, gateway.text("database", DEFAULT_DATABASE) or DEFAULT_DATABASE),
        cpus=_cpus(gateway),
        center_public_key=_center_public_key(keys),
        forward=ForwardConfig(
            confirm_timeout_s=forward.integer("confirm_timeout_s", DEFAULT_CONFIRM_TIMEOUT_S, 1),
            center_silent_after_s=forward.integer("center_silent_after_s",
                                                  DEFAULT_CENTER_SILENT_AFTER_S, 1)),
        commands=_commands(commands),
        keep_delivered_days=store.integer("keep_delivered_days", DEFAULT_KEEP_DELIVERED_DAYS, 1),
        source=source,
    )
    _check_command_trust(config, keys, commands)
    for reader in (gateway, store, testing, keys, metrics, logs, cases, forward, commands):
        reader.reject_unknown()
    root.reject_unknown(also_known=("risk",))
    _check_unique_terminal_ids(config, source)
    return config


def _center_public_key(reader: TableReader) -> str | None:
    path = reader.text("center_public_key", None)
    if path is None:
        return None
    if not path:  # an empty value must not quietly turn command checks off
        reader.fail("center_public_key", "empty: name the center's command.pub, or leave "
                                          "the key out")
    try:
        load_center_public_key(path)
    except CommandKeyError as exc:
        reader.fail("center_public_key", str(exc))
    return path


def _commands(reader: TableReader) -> CommandsConfig:
    return CommandsConfig(
        insecure_obey_unsigned=reader.flag("insecure_obey_unsigned", False),
        max_age_s=reader.integer("max_age_s", DEFAULT_COMMAND_MAX_AGE_S, 10, 86_400),
        max_ahead_s=reader.integer("max_ahead_s", DEFAULT_COMMAND_MAX_AHEAD_S, 0, 3600))


def _check_command_trust(config: GatewayConfig, keys: TableReader,
                         commands: TableReader) -> None:
    """Fail closed: without the center's key, start only when the config says
    in so many words that commands are obeyed unsigned."""
    unsigned = config.commands.insecure_obey_unsigned
    if config.center_public_key is None and not unsigned:
        keys.fail("center_public_key", "required: the center's command.pub (`posgw center "
                  "command-key DIR` writes it). Without it anyone who can publish on the "
                  "broker commands this gateway, and events count as delivered at the "
                  "broker's PUBACK; to run so anyway, set [commands] "
                  "insecure_obey_unsigned = true")
    if config.center_public_key is not None and unsigned:
        commands.fail("insecure_obey_unsigned", "contradicts [keys] center_public_key, "
                      "which makes this gateway obey only signed commands: remove one")


def _cpus(reader: TableReader) -> tuple[int, ...]:
    cpus = reader.raw("cpus", [])
    if not isinstance(cpus, list) or not all(
            isinstance(cpu, int) and not isinstance(cpu, bool) and cpu >= 0 for cpu in cpus):
        reader.fail("cpus", "a list of CPU numbers, e.g. [1]")
    return tuple(sorted(set(cpus)))


def _identifier(reader: TableReader, key: str) -> str:
    value = reader.text(key)
    if not value or not all(c.isalnum() or c in "-_" for c in value):
        reader.fail(key, "required: letters, digits, '-' or '_' (it is part of MQTT topics)")
    return value


def _mqtt(reader: TableReader) -> MqttConfig:
    config = MqttConfig(
        host=reader.text("host", "127.0.0.1") or "127.0.0.1",
        port=reader.integer("port", 1883, 1, 65535),
        topic_prefix=(reader.text("topic_prefix", DEFAULT_TOPIC_PREFIX)
                      or DEFAULT_TOPIC_PREFIX).strip("/"),
        client_id=reader.text("client_id", "") or None,
        keepalive=reader.integer("keepalive", DEFAULT_KEEPALIVE_S, 5, 3600),
        tls_ca=reader.text("tls_ca", None),
        tls_cert=reader.text("tls_cert", None),
        tls_key=reader.text("tls_key", None),
        username=reader.text("username", None),
        password=reader.text("password", None),
    )
    if (config.tls_cert is None) != (config.tls_key is None):
        reader.fail("tls_cert", "tls_cert and tls_key go together")
    for key, problem in tls_file_problems(config):
        reader.fail(key, problem)
    reader.reject_unknown()
    return config


def _upstream(reader: TableReader) -> UpstreamConfig:
    config = UpstreamConfig(
        mode=reader.choice("mode", ("standin", "iso8583"), "standin"),
        floor_limit=reader.integer("floor_limit", DEFAULT_FLOOR_LIMIT, 0),
        host=reader.text("host", None),
        profile=reader.text("profile", "iso87-binary") or "iso87-binary",  # checked on use
        timeout_s=reader.integer("timeout_s", DEFAULT_UPSTREAM_TIMEOUT_S, 1, 300),
        refund_limits=_refund_limits(reader.sub("refund_limits")),
    )
    if config.mode == "iso8583":
        _host_port(reader, "host", config.host)
    reader.reject_unknown()
    return config


def _refund_limits(reader: TableReader) -> dict[str, int]:
    limits = {str(terminal): reader.integer(str(terminal), low=0)
              for terminal in reader.raw_table}
    reader.reject_unknown()
    return limits


def _listener(reader: TableReader) -> ListenerConfig:
    allow = reader.array("allow")
    if not all(isinstance(item, str) and item for item in allow):
        reader.fail("allow", "must be an array of terminal ids")
    register_unknown = reader.flag("register_unknown", False)
    config = ListenerConfig(bind=_host_port(reader, "bind", reader.text("bind")),
                            profile=_profile(reader), allow=tuple(allow),
                            register_unknown=register_unknown,
                            max_terminals=reader.integer("max_terminals",
                                                         DEFAULT_MAX_TERMINALS, 1, 100_000),
                            sessions=_session_limits(reader))
    reader.reject_unknown()  # first: a misspelled `allow` is named as such
    if not allow and not register_unknown:
        reader.fail("allow", "required: the terminal ids (field 41) this listener serves; "
                             "or register_unknown = true to register new ids on first "
                             "contact (up to max_terminals)")
    return config


def _session_limits(reader: TableReader) -> SessionLimits:
    """A listener's bounds on its TCP sessions (drivers/session_limits.py)."""
    default = SessionLimits()
    limits = SessionLimits(
        max_connections=reader.integer("max_connections", default.max_connections, 1, 65_535),
        max_per_address=reader.integer("max_connections_per_address",
                                       default.max_per_address, 1, 65_535),
        idle_timeout_s=reader.integer("idle_timeout_s", int(default.idle_timeout_s), 1, 86_400),
        inter_byte_timeout_s=reader.integer("inter_byte_timeout_s",
                                            int(default.inter_byte_timeout_s), 1, 600),
        message_timeout_s=reader.integer("message_timeout_s", int(default.message_timeout_s),
                                         1, 600))
    if limits.max_per_address > limits.max_connections:
        reader.fail("max_connections_per_address", "must not exceed max_connections "
                                                   f"({limits.max_connections})")
    if limits.inter_byte_timeout_s > limits.message_timeout_s:
        reader.fail("inter_byte_timeout_s", "must not exceed message_timeout_s "
                                            f"({limits.message_timeout_s:g})")
    return limits


def _terminal(reader: TableReader) -> TerminalConfig:
    driver = reader.choice("driver", ("serial", "usb", "tcp"))
    config = TerminalConfig(
        id=_identifier(reader, "id"),
        driver=driver,
        profile=_profile(reader),
        merchant_id=reader.text("merchant_id", "") or "",
        port=reader.text("port", None),
        usb=reader.text("usb", None),
        serial_number=reader.text("serial_number", None),
        overrides={k: reader.raw(k) for k in ("baud", "bytesize", "parity", "stopbits", "flow")
                   if k in reader},
    )
    if driver == "serial" and not config.port:
        reader.fail("port", "a serial terminal needs its port (e.g. /dev/ttyUSB0)")
    if driver == "tcp":  # a terminal that listens: the gateway dials it
        _host_port(reader, "port", config.port)
    if driver == "usb":
        _usb_ids(reader, config.usb)
    reader.reject_unknown()
    return config


def _profile(reader: TableReader) -> str:
    """A profile name (or path) that loads, checked now rather than at first contact."""
    name = reader.text("profile") or ""
    try:
        load_profile(name)
    except SpecError as exc:
        reader.fail("profile", f"{name!r}: {exc.reason}")
    return name


def _host_port(reader: TableReader, key: str, value: str | None) -> str:
    host, _, port = (value or "").rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        reader.fail(key, f"must be HOST:PORT; got {value!r}")
    return value or ""


def _optional_host_port(reader: TableReader, key: str) -> str | None:
    value = reader.text(key, None)
    return None if value is None else _host_port(reader, key, value)


def _usb_ids(reader: TableReader, value: str | None) -> None:
    vid, _, pid = (value or "").partition(":")
    hexdigits = "0123456789abcdefABCDEF"
    if len(vid) != 4 or len(pid) != 4 or not all(c in hexdigits for c in vid + pid):
        reader.fail("usb", f'must be "VVVV:PPPP" in hex, e.g. "0b00:0054"; got {value!r}')


def _cases(reader: TableReader, database: str) -> CasesConfig:
    first_h = reader.integer("first_response_h", int(DEFAULT_FIRST_RESPONSE.total_seconds())
                             // 3600, 1, 24 * 30)
    expire_days = reader.integer("expire_after_days", DEFAULT_EXPIRE_AFTER.days, 1, 3650)
    if expire_days * 24 <= first_h:
        reader.fail("expire_after_days", "must leave time after the first-response due time "
                                         f"({first_h} h)")
    return CasesConfig(
        policy=CasePolicy(timedelta(hours=first_h), timedelta(days=expire_days)),
        evidence_dir=reader.text("evidence_dir", None) or _evidence_dir_beside(database),
        evidence_max_bytes=reader.integer("evidence_max_mb", DEFAULT_EVIDENCE_MAX_BYTES
                                          // (1024 * 1024), 1, 1024) * 1024 * 1024)


def _evidence_dir_beside(database: str) -> str:
    """`evidence/` next to a SQLite file: one directory to back up and to give
    the daemon's user. A server database has no such place."""
    prefix = "sqlite:///"
    path = database[len(prefix):] if database.startswith(prefix) else ""
    if not path or path == ":memory:":
        return DEFAULT_EVIDENCE_DIR
    return str(Path(path).parent / "evidence")


def _check_unique_terminal_ids(config: GatewayConfig, source: str) -> None:
    seen: set[str] = set()
    for i, terminal in enumerate(config.terminals):
        if terminal.id in seen:
            raise ConfigError(f"terminals[{i}].id", f"{terminal.id} is configured twice", source)
        seen.add(terminal.id)
