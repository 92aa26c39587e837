"""Gateway configuration: the shipped example loads; mistakes name file, key, reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from posgw.gateway.config import load_config, parse_config
from posgw.protocols.config_error import ConfigError
from tests.center_key import center_public_key, gateway_example, with_center_key
from tests.cli.test_decode import run_posgw

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "gateway.example.toml"
MINIMAL = with_center_key({"gateway": {"branch_id": "B001", "gateway_id": "gw-1"}})

LISTENER = {"bind": "0.0.0.0:9001", "profile": "iso87-ascii", "allow": ["T0101"]}


def test_shipped_example_config_loads(tmp_path: Path) -> None:
    config = load_config(gateway_example(tmp_path), environ={})
    assert (config.branch_id, config.gateway_id) == ("B001", "gw-b001-1")
    assert [t.driver for t in config.terminals] == ["serial", "usb"]
    assert config.listeners[0].profile == "iso87-ascii"
    assert config.upstream.mode == "standin" and config.upstream.floor_limit == 500000


def test_environment_secrets_override_the_file(tmp_path: Path) -> None:
    config = load_config(gateway_example(tmp_path), environ={"POSGW_MQTT_PASSWORD": "s3cret",
                                           "POSGW_DATABASE_URL": "sqlite:///tmp/x.db"})
    assert config.mqtt.password == "s3cret"
    assert config.database == "sqlite:///tmp/x.db"
    assert "s3cret" not in repr(config)


def test_minimal_config_takes_documented_defaults() -> None:
    config = parse_config(MINIMAL)
    assert config.mqtt.topic_prefix == "pos/v1"
    assert config.database.startswith("sqlite:///")
    assert config.terminals == ()
    assert config.cpus == ()  # any CPU


def test_cpus_pin_the_daemon_and_a_missing_cpu_stops_it_with_exit_2(tmp_path: Path) -> None:
    cpus = parse_config({**MINIMAL, "gateway": {**MINIMAL["gateway"], "cpus": [1, 0, 1]}}).cpus
    assert cpus == (0, 1)
    config = tmp_path / "gw.toml"
    config.write_text(f'[gateway]\nbranch_id = "B001"\ngateway_id = "gw-1"\ncpus = [4096]\n'
                      f'database = "sqlite:///{tmp_path / "gw.db"}"\n'
                      f'[keys]\ncenter_public_key = "{center_public_key()}"\n')
    ran = run_posgw("run", "-c", str(config))
    assert ran.returncode == 2
    assert "posgw run: [gateway] cpus = [4096]: " in ran.stderr
    assert "Traceback" not in ran.stderr


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ({"gateway": {"branch_id": "B 1", "gateway_id": "g"}}, "gateway.branch_id"),
        ({**MINIMAL, "mqtt": {"port": 0}}, "mqtt.port"),
        ({**MINIMAL, "mqtt": {"tls_cert": "c.pem"}}, "mqtt.tls_cert"),
        ({**MINIMAL, "upstream": {"mode": "iso8583"}}, "upstream.host"),
        ({**MINIMAL, "listeners": [{"bind": "nowhere", "profile": "iso87-ascii",
                                    "allow": ["T0101"]}]},
         "listeners[0].bind"),
        ({**MINIMAL, "terminals": [{"id": "T1", "driver": "serial", "profile": "ecr-stx-lrc"}]},
         "terminals[0].port"),
        ({**MINIMAL, "terminals": [{"id": "T1", "driver": "usb", "usb": "0b00",
                                    "profile": "unionpay-tpdu"}]}, "terminals[0].usb"),
        ({**MINIMAL, "terminals": [{"id": "T1", "driver": "tcp", "profile": "no-such"}]},
         "terminals[0].profile"),
        ({**MINIMAL, "mqtt": {"hots": "x"}}, "mqtt.hots"),
        ({"gateway": {**MINIMAL["gateway"], "cpus": [-1]}}, "gateway.cpus"),
        ({"gateway": {**MINIMAL["gateway"], "cpus": "1"}}, "gateway.cpus"),
        ({**MINIMAL, "keys": {"center_public_key": "/no/such/command.pub"}},
         "keys.center_public_key"),
        ({**MINIMAL, "keys": {"center_public_key": str(EXAMPLE)}}, "keys.center_public_key"),
        ({**MINIMAL, "listeners": [{"bind": "0.0.0.0:9001", "profile": "iso87-ascii"}]},
         "listeners[0].allow"),
        ({**MINIMAL, "listeners": [{**LISTENER, "register_unknown": "yes"}]},
         "listeners[0].register_unknown"),
        ({**MINIMAL, "listeners": [{**LISTENER, "max_conections": 5}]},
         "listeners[0].max_conections"),
        ({**MINIMAL, "listeners": [{**LISTENER, "max_connections": 4,
                                    "max_connections_per_address": 8}]},
         "listeners[0].max_connections_per_address"),
        ({**MINIMAL, "listeners": [{**LISTENER, "inter_byte_timeout_s": 20}]},
         "listeners[0].inter_byte_timeout_s"),
        ({**MINIMAL, "upstream": {"refund_limits": {"T0101": -1}}},
         "upstream.refund_limits.T0101"),
    ],
)
def test_a_mistake_is_reported_with_its_key(table: dict, key: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(table, "gw.toml")
    assert err.value.key == key
    assert str(err.value).startswith(f"gw.toml: {key}: ")


def test_a_listener_serves_its_allow_list_and_registers_others_only_when_asked() -> None:
    listed = parse_config({**MINIMAL, "listeners": [LISTENER]}).listeners[0]
    assert (listed.allow, listed.register_unknown) == (("T0101",), False)
    opted = parse_config({**MINIMAL, "listeners": [
        {"bind": "0.0.0.0:9001", "profile": "iso87-ascii", "register_unknown": True}]})
    assert opted.listeners[0].register_unknown and opted.listeners[0].max_terminals == 64


def test_stand_in_refund_limits_are_read_per_terminal() -> None:
    config = parse_config({**MINIMAL, "upstream": {"refund_limits": {"T0101": 20_000}}})
    assert config.upstream.refund_limits == {"T0101": 20_000}
    assert parse_config(MINIMAL).upstream.refund_limits == {}


def test_terminal_ids_must_be_unique() -> None:
    terminal = {"id": "T1", "driver": "tcp", "port": "127.0.0.1:7000", "profile": "iso87-ascii"}
    with pytest.raises(ConfigError, match="configured twice"):
        parse_config({**MINIMAL, "terminals": [terminal, terminal]})


def test_unreadable_file_is_a_spec_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "missing.toml", environ={})
    assert err.value.key == "(file)"


def test_forward_keys_default_to_a_minute_and_five_minutes_and_are_read() -> None:
    defaults = parse_config(MINIMAL).forward
    assert (defaults.confirm_timeout_s, defaults.center_silent_after_s) == (60, 300)
    chosen = parse_config({**MINIMAL, "forward": {"confirm_timeout_s": 5,
                                                  "center_silent_after_s": 30}}).forward
    assert (chosen.confirm_timeout_s, chosen.center_silent_after_s) == (5, 30)


@pytest.mark.parametrize("forward", [{"confirm_timeout_s": 0}, {"confirm_timeout": 60}])
def test_a_forward_mistake_names_its_key(forward: dict) -> None:
    with pytest.raises(ConfigError, match="forward"):
        parse_config({**MINIMAL, "forward": forward})
