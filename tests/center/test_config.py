"""center.toml: defaults, environment secrets, and errors that name file, key and reason."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from posgw.center.config import DEFAULT_DATABASE, load_center_config
from posgw.center.ingest import subscription_filters
from posgw.drivers.mqtt import DEFAULT_SESSION_EXPIRY_S
from posgw.gateway.security import PUBLIC_KEY_FILE, generate_keys
from posgw.protocols.config_error import ConfigError

GATEWAY = ('[[gateways]]\nid = "gw-b001-1"\nbranch_id = "B001"\n'
           'public_key = "keys/signing.pub"\n')
GW1 = '[[gateways]]\nid = "gw-1"\nbranch_id = "B001"\n'  # a public_key line to follow


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    generate_keys(tmp_path / "keys")
    return tmp_path


def write(folder: Path, text: str) -> Path:
    path = folder / "center.toml"
    path.write_text(text)
    return path


def error(folder: Path, text: str, environ: dict[str, str] | None = None) -> ConfigError:
    path = write(folder, text)
    with pytest.raises(ConfigError) as caught:
        load_center_config(path, environ or {})
    assert caught.value.source == str(path)  # every error names the file
    return caught.value


def test_a_minimal_file_gets_the_documented_defaults(folder: Path) -> None:
    config = load_center_config(write(folder, GATEWAY), {})
    assert config.database == DEFAULT_DATABASE == "sqlite:////var/lib/posgw/center.db"
    mqtt = config.mqtt
    assert (mqtt.host, mqtt.port, mqtt.topic_prefix, mqtt.share_group, mqtt.keepalive) == (
        "127.0.0.1", 1883, "pos/v1", "center", 30)
    # Not predictable (issue 17, finding 4): a random suffix without a user name.
    assert mqtt.client_id.startswith(f"posgw-center-center-{socket.gethostname()}-")
    assert load_center_config(write(folder, GATEWAY), {}).mqtt.client_id != mqtt.client_id
    assert mqtt.session_expiry_s == DEFAULT_SESSION_EXPIRY_S
    assert [g.id for g in config.gateways] == ["gw-b001-1"]
    assert config.gateways[0].public_key_path == str(folder / "keys" / PUBLIC_KEY_FILE)


def test_the_subscription_is_shared_by_default_so_center_processes_split_the_stream(
        folder: Path) -> None:
    config = load_center_config(write(folder, GATEWAY), {})
    assert subscription_filters(config.mqtt) == (
        "$share/center/pos/v1/+/+/tx", "$share/center/pos/v1/+/+/reconciliation",
        # only their seqs are recorded (gaps in a gateway's seq: center/seq_gaps.py)
        "$share/center/pos/v1/+/+/status", "$share/center/pos/v1/+/cases",
        "$share/center/pos/v1/+/cmd/reply")


def test_an_empty_share_group_means_a_plain_subscription(folder: Path) -> None:
    config = load_center_config(write(folder, f'[mqtt]\nshare_group = ""\n{GATEWAY}'), {})
    assert subscription_filters(config.mqtt)[0] == "pos/v1/+/+/tx"


def test_environment_secrets_win_over_the_file(folder: Path) -> None:
    text = ('[center]\ndatabase = "sqlite:////tmp/file.db"\n'
            f'[mqtt]\nusername = "file-user"\n{GATEWAY}')
    environ = {"POSGW_CENTER_DATABASE_URL": "postgresql+psycopg://center@db/center",
               "POSGW_MQTT_USERNAME": "env-user", "POSGW_MQTT_PASSWORD": "s3cret"}
    config = load_center_config(write(folder, text), environ)
    assert config.database == "postgresql+psycopg://center@db/center"
    assert (config.mqtt.username, config.mqtt.password) == ("env-user", "s3cret")
    assert "s3cret" not in repr(config)
    assert config.mqtt.client_id == "env-user"  # what the deployed broker makes it anyway


def test_the_verifier_trusts_exactly_the_registered_gateways(folder: Path) -> None:
    generate_keys(folder / "other")
    text = GATEWAY + ('[[gateways]]\nid = "gw-b002-1"\nbranch_id = "B002"\n'
                      'public_key = "other/signing.pub"\n')
    config = load_center_config(write(folder, text), {})
    assert config.verifier().gateway_ids == {"gw-b001-1", "gw-b002-1"}


def test_without_gateways_the_config_is_valid_for_gateways_registered_by_command(
        folder: Path) -> None:
    config = load_center_config(write(folder, ""), {})
    assert config.gateways == () and config.verifier().gateway_ids == frozenset()


def test_the_occurred_at_tolerance_is_configurable_and_defaults_to_5_min_and_30_days(
        folder: Path) -> None:
    default = load_center_config(write(folder, GATEWAY), {})
    assert (default.max_clock_skew_s, default.max_event_age_s) == (300, 30 * 86_400)
    text = "[center]\nmax_clock_skew_s = 30\nmax_event_age_s = 86400\n" + GATEWAY
    tight = load_center_config(write(folder, text), {})
    assert (tight.max_clock_skew_s, tight.max_event_age_s) == (30, 86_400)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"center\.toml: \(file\): No such file"):
        load_center_config(tmp_path / "center.toml", {})


def test_broken_toml_is_reported_with_its_position(folder: Path) -> None:
    assert error(folder, "[mqtt\nport = 1").key == "(toml)"


@pytest.mark.parametrize(("text", "key", "reason"), [
    ('[center]\nmax_clock_skew_s = 0\n' + GATEWAY, "center.max_clock_skew_s",
     "must be 1..86400"),
    ('[center]\nmax_event_age_s = "1d"\n' + GATEWAY, "center.max_event_age_s",
     "must be an integer"),
    ('[mqtt]\nport = 0\n' + GATEWAY, "mqtt.port", "must be 1..65535; got 0"),
    ('[mqtt]\nport = "1883"\n' + GATEWAY, "mqtt.port", "must be an integer"),
    ('[mqtt]\nhots = "x"\n' + GATEWAY, "mqtt.hots", "unknown key"),
    ('[centre]\n' + GATEWAY, "centre", "unknown key"),
    ('[mqtt]\ntopic_prefix = "pos/+"\n' + GATEWAY, "mqtt.topic_prefix", "without wildcards"),
    ('[mqtt]\nshare_group = "a/b"\n' + GATEWAY, "mqtt.share_group", "letters, digits"),
    ('[mqtt]\ntls_cert = "c.pem"\n' + GATEWAY, "mqtt.tls_cert", "go together"),
    ('[mqtt]\ntls_ca = "/nonexistent/ca.pem"\n' + GATEWAY, "mqtt.tls_ca", "no such file"),
    ('[mqtt]\npassword = "p"\n' + GATEWAY, "mqtt.password", "needs a username"),
    ('[mqtt]\nsession_expiry_s = 0\n' + GATEWAY, "mqtt.session_expiry_s", "must be 1.."),
    ('[center]\ndatabase = "mysql://x"\n' + GATEWAY, "center.database", "must be sqlite"),
    ('[[gateways]]\nbranch_id = "B001"\npublic_key = "keys/signing.pub"\n', "gateways[0].id",
     "required"),
    ('[[gateways]]\nid = "gw 1"\npublic_key = "keys/signing.pub"\n', "gateways[0].id",
     "letters, digits"),
    ('[[gateways]]\nid = "gw-1"\nbranch_id = "B001"\n', "gateways[0].public_key", "required"),
    ('[[gateways]]\nid = "gw-1"\npublic_key = "keys/signing.pub"\n', "gateways[0].branch_id",
     "required"),
    ('[[gateways]]\nid = "gw-1"\nbranch_id = "B/1"\npublic_key = "keys/signing.pub"\n',
     "gateways[0].branch_id", "the branch this gateway serves"),
    (GW1 + 'public_key = "nope.pub"\n', "gateways[0].public_key", "No such file"),
    (GW1 + 'public_key = "keys/token.key"\n', "gateways[0].public_key", "not a PEM public key"),
    (GW1 + 'public_key = "keys/signing.pub"\nbranch = "B1"\n', "gateways[0].branch",
     "unknown key"),
    (GATEWAY + GATEWAY, "gateways[1].id", "gw-b001-1 is registered twice"),
])
def test_each_mistake_names_its_key_and_reason(folder: Path, text: str, key: str,
                                               reason: str) -> None:
    problem = error(folder, text)
    assert problem.key == key
    assert reason in problem.reason


def test_an_rsa_key_is_not_accepted_as_a_gateway_key(folder: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    pem = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key() \
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    (folder / "rsa.pub").write_bytes(pem)
    problem = error(folder, GW1 + 'public_key = "rsa.pub"\n')
    assert (problem.key, problem.reason.endswith("not an Ed25519 public key")) == (
        "gateways[0].public_key", True)
