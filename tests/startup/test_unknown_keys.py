"""A misspelled key is named as unknown, in every section of both files:
a typo must not leave a setting at its default without a word."""

from __future__ import annotations

from pathlib import Path

import pytest

from posgw.center.config import parse_center_config
from posgw.gateway.config import parse_config
from posgw.protocols.config_error import ConfigError
from tests.center_key import with_center_key
from tests.posgw_script import run_posgw
from tests.startup.setups import Table, assert_refused, center_table, gateway_table, write_toml

#: (section, table with a misspelled key, the key path reported): each
#: section of gateway.toml, the arrays of tables and the [risk] sub-tables too.
GATEWAY_TYPOS = [
    ("gateway", {"gateway": {"branch_id": "B001", "gateway_id": "g", "databse": "x"}},
     "gateway.databse"),
    ("mqtt", {"mqtt": {"hots": "x"}}, "mqtt.hots"),
    ("upstream", {"upstream": {"floor_limt": 1}}, "upstream.floor_limt"),
    ("store", {"store": {"outbox_capp": 1}}, "store.outbox_capp"),
    ("forward", {"forward": {"confirm_timeout": 60}}, "forward.confirm_timeout"),
    ("keys", {"keys": {"dirr": "/x"}}, "keys.dirr"),
    ("metrics", {"metrics": {"bnd": "127.0.0.1:1"}}, "metrics.bnd"),
    ("logging", {"logging": {"fromat": "json"}}, "logging.fromat"),
    ("cases", {"cases": {"evidence_max": 1}}, "cases.evidence_max"),
    ("testing", {"testing": {"usb": "x"}}, "testing.usb"),
    ("listeners", {"listeners": [{"bind": "127.0.0.1:0", "profile": "iso87-ascii",
                                  "alow": ["T1"]}]}, "listeners[0].alow"),
    ("terminals", {"terminals": [{"id": "T1", "driver": "serial", "port": "/dev/null",
                                  "profile": "ecr-stx-lrc", "baudrate": 9600}]},
     "terminals[0].baudrate"),
    ("risk", {"risk": {"rule": {}}}, "risk.rule"),
    ("risk.rules", {"risk": {"rules": {"rapid_repet": {}}}}, "risk.rules.rapid_repet"),
    ("risk.rules.NAME", {"risk": {"rules": {"wrong_pin": {"treshold": 2}}}},
     "risk.rules.wrong_pin.treshold"),
    ("(top level)", {"mqqt": {"host": "x"}}, "mqqt"),
]
CENTER_TYPOS = [
    ("center", {"center": {"databse": "sqlite:////x.db"}}, "center.databse"),
    ("mqtt", {"mqtt": {"share_grop": "x"}}, "mqtt.share_grop"),
    ("gateways", {"gateways": [{"id": "gw-1", "branch_id": "B001", "public_key": "PUB",
                               "publickey": "x"}]},
     "gateways[0].publickey"),
    ("(top level)", {"centre": {}}, "centre"),
]
MINIMAL_GATEWAY: Table = {"gateway": {"branch_id": "B001", "gateway_id": "gw-1"}}


@pytest.mark.parametrize(("section", "typo", "key"), GATEWAY_TYPOS,
                         ids=[case[0] for case in GATEWAY_TYPOS])
def test_gateway_names_a_misspelled_key_as_unknown(section: str, typo: Table, key: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(with_center_key({**MINIMAL_GATEWAY, **typo}), "gw.toml")
    # A misspelled rule name is an "unknown rule", listing the rules.
    unknown = "unknown rule" if section == "risk.rules" else "unknown key"
    assert (err.value.key, err.value.reason.split(";")[0]) == (key, unknown)


@pytest.mark.parametrize(("section", "typo", "key"), CENTER_TYPOS,
                         ids=[case[0] for case in CENTER_TYPOS])
def test_center_names_a_misspelled_key_as_unknown(tmp_path: Path, section: str, typo: Table,
                                                  key: str) -> None:
    public = tmp_path / "gw.pub"
    public.write_bytes(_public_pem())
    if "gateways" in typo:
        typo = {"gateways": [{**typo["gateways"][0], "public_key": str(public)}]}
    with pytest.raises(ConfigError) as err:
        parse_center_config(typo, "center.toml", base_dir=tmp_path)
    assert (err.value.key, err.value.reason.split(";")[0]) == (key, "unknown key")


def test_posgw_run_stops_on_a_misspelled_key_naming_it(tmp_path: Path) -> None:
    table = gateway_table(tmp_path)
    table["mqtt"]["topic_prefx"] = "pos/v1"
    config = write_toml(tmp_path / "gateway.toml", table)
    ran = run_posgw("run", "-c", str(config), timeout=30)
    assert_refused(ran, "run", config, "mqtt.topic_prefx", "unknown key", "topic_prefix")


def test_posgw_center_stops_on_a_misspelled_key_naming_it(tmp_path: Path) -> None:
    table = center_table(tmp_path)
    table["center"]["comand_key"] = "hq/command.key"
    config = write_toml(tmp_path / "center.toml", table)
    ran = run_posgw("center", "-c", str(config), timeout=30)
    assert_refused(ran, "center config", config, "center.comand_key", "unknown key", "command_key")


def _public_pem() -> bytes:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return Ed25519PrivateKey.generate().public_key().public_bytes(
        Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
