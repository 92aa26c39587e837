"""deploy/*.example.toml work as the deploy guide (docs/gateway/deploy.md) uses them.

The center example trusts the example gateway by a key file; the guide's
real commands (`posgw keys generate`, then `install`) must produce it where
the example looks, and the center must then start. The example's serial
port must be a link the shipped udev rules make.
"""

from __future__ import annotations

import json
import re
import shutil
import tomllib
from pathlib import Path

from tests.posgw_script import run_posgw

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
CENTER_EXAMPLE = DEPLOY / "center.example.toml"
GATEWAY_EXAMPLE = DEPLOY / "gateway.example.toml"
RULES = DEPLOY / "99-posgw-terminals.rules"
GUIDE = ROOT / "docs" / "gateway" / "deploy.md"




def center_example_under(root: Path) -> Path:
    """The example with /etc/posgw and the center's state directory moved under `root`."""
    text = CENTER_EXAMPLE.read_text(encoding="utf-8")
    text = text.replace("/etc/posgw/", f"{root}/etc/posgw/")
    text = text.replace("sqlite:////var/lib/posgw-center/", f"sqlite:///{root}/")
    config = root / "etc" / "posgw" / "center.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(text, encoding="utf-8")
    return config


def test_center_example_trusts_the_gateway_example_by_its_id() -> None:
    gateway_id = tomllib.loads(GATEWAY_EXAMPLE.read_text())["gateway"]["gateway_id"]
    trusted = tomllib.loads(CENTER_EXAMPLE.read_text())["gateways"]
    assert [entry["id"] for entry in trusted] == [gateway_id]
    assert trusted[0]["public_key"] == f"/etc/posgw/gateways/{gateway_id}.pub"


def test_center_example_exits_2_naming_the_missing_gateway_key(tmp_path: Path) -> None:
    result = run_posgw("center", "-c", str(center_example_under(tmp_path)), "gateways", "list")
    assert result.returncode == 2
    assert "gateways[0].public_key" in result.stderr


def test_center_example_starts_after_the_guides_key_steps(tmp_path: Path) -> None:
    keys = tmp_path / "var" / "lib" / "posgw" / "keys"
    assert run_posgw("keys", "generate", "--dir", str(keys)).returncode == 0
    installed = tmp_path / "etc" / "posgw" / "gateways" / "gw-b001-1.pub"
    installed.parent.mkdir(parents=True)
    shutil.copyfile(keys / "signing.pub", installed)  # the guide's `install -m 0644`
    result = run_posgw("center", "-c", str(center_example_under(tmp_path)),
                       "gateways", "list", "--json")
    assert result.returncode == 0, result.stderr
    assert [(g["gateway_id"], g["trusted"]) for g in json.loads(result.stdout)] == [
        ("gw-b001-1", True)]


def test_deploy_guide_installs_the_gateway_key_before_copying_the_center_example() -> None:
    guide = GUIDE.read_text(encoding="utf-8")
    install = guide.index("/etc/posgw/gateways/gw-b001-1.pub")
    copy = guide.index("cp deploy/center.example.toml /etc/posgw/center.toml")
    assert install < copy


def test_gateway_example_serial_ports_are_links_the_udev_rules_make() -> None:
    links = {f"/dev/{link}" for link in re.findall(r'SYMLINK\+="([^"$]+)"', RULES.read_text())}
    terminals = tomllib.loads(GATEWAY_EXAMPLE.read_text())["terminals"]
    ports = [t["port"] for t in terminals if t["driver"] == "serial"]
    assert ports
    assert set(ports) <= links
    assert all(port in GUIDE.read_text(encoding="utf-8") for port in ports)
