"""deploy/: the systemd units and udev rules say what docs/gateway/deploy.md promises."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from configparser import ConfigParser
from pathlib import Path

import pytest

from posgw.cli.common import EXIT_BAD_INPUT
from posgw.drivers.session_limits import SessionLimits
from posgw.gateway.config import DEFAULT_UPSTREAM_TIMEOUT_S
from posgw.gateway.daemon import DAEMON_DESCRIPTORS
from posgw.gateway.profiles import builtin_names, load_profile

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
GATEWAY_UNIT = DEPLOY / "posgw.service"
CENTER_UNIT = DEPLOY / "posgw-center.service"
RULES = DEPLOY / "99-posgw-terminals.rules"
#: Keys systemd accepts more than once, each adding to the list.
REPEATABLE = {"DeviceAllow", "ReadWritePaths", "EnvironmentFile"}
HARDENING = {
    "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
    "PrivateTmp": "yes", "CapabilityBoundingSet": "", "SystemCallFilter": "@system-service",
    "KillSignal": "SIGTERM", "Restart": "on-failure", "Type": "simple", "UMask": "0077",
}
# One udev key: NAME or NAME{attr}, an operator, a double-quoted value.
UDEV_KEY = re.compile(r'\s*([A-Z_]+(?:\{[^}]+\})?)\s*(==|!=|\+=|-=|:=|=)\s*"([^"]*)"\s*(?:,|$)')


def unit(path: Path) -> ConfigParser:
    # strict=False: systemd repeats keys (DeviceAllow); optionxform keeps their case.
    parser = ConfigParser(strict=False, interpolation=None, delimiters=("=",),
                          comment_prefixes=("#", ";"))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(path, encoding="utf-8")
    return parser


def all_values(path: Path, key: str) -> list[str]:
    """Every value of a repeatable key (ConfigParser keeps only the last)."""
    return [line.split("=", 1)[1].strip() for line in path.read_text().splitlines()
            if line.startswith(f"{key}=")]


def seconds(value: str) -> float:
    units = {"s": 1, "min": 60, "": 1}
    number, unit_name = re.fullmatch(r"(\d+)\s*(s|min|)", value).groups()  # type: ignore[union-attr]
    return int(number) * units[unit_name]


def udev_rules() -> list[list[tuple[str, str, str]]]:
    rules = []
    for number, line in enumerate(RULES.read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        keys = UDEV_KEY.findall(line)
        rebuilt = ", ".join(f'{k}{op}"{v}"' for k, op, v in keys)
        assert rebuilt == line.strip(), f"line {number} is not KEY op \"value\", ...: {line}"
        rules.append(keys)
    return rules


def matches(rule: list[tuple[str, str, str]]) -> dict[str, str]:
    return {k: v for k, op, v in rule if op == "=="}


def assigns(rule: list[tuple[str, str, str]]) -> dict[str, str]:
    return {k: v for k, op, v in rule if op in ("=", "+=", ":=")}


# --- systemd units --------------------------------------------------------------


def test_gateway_unit_runs_the_daemon_on_the_etc_config() -> None:
    service = unit(GATEWAY_UNIT)["Service"]
    assert service["ExecStart"].split()[1:] == ["run", "-c", "/etc/posgw/gateway.toml"]
    assert service["ExecStart"].split()[0].endswith("/posgw")
    assert seconds(service["RestartSec"]) >= 1
    assert unit(GATEWAY_UNIT)["Install"]["WantedBy"] == "multi-user.target"


@pytest.mark.parametrize("path", [GATEWAY_UNIT, CENTER_UNIT], ids=lambda p: p.name)
def test_unit_sets_the_hardening_and_restart_policy(path: Path) -> None:
    service = unit(path)["Service"]
    assert {key: service.get(key) for key in HARDENING} == HARDENING
    assert "AF_INET" in service["RestrictAddressFamilies"].split()
    assert service["DevicePolicy"] == "closed"


@pytest.mark.parametrize("path", [GATEWAY_UNIT, CENTER_UNIT], ids=lambda p: p.name)
def test_unit_does_not_restart_a_start_refused_for_a_mistake(path: Path) -> None:
    # posgw exits 2 for what the operator must fix (tests/startup): systemd
    # must not retry it every RestartSec, but still restarts a crash (exit 1).
    assert unit(path)["Service"]["RestartPreventExitStatus"].split() == [str(EXIT_BAD_INPUT)]


def test_gateway_unit_runs_as_posgw_with_serial_and_usb_device_groups() -> None:
    service = unit(GATEWAY_UNIT)["Service"]
    assert (service["User"], service["StateDirectory"]) == ("posgw", "posgw")
    assert set(service["SupplementaryGroups"].split()) == {"dialout", "plugdev"}
    assert all_values(GATEWAY_UNIT, "ReadWritePaths") == ["/var/lib/posgw"]


def test_gateway_unit_allows_only_terminal_devices_and_the_needed_sockets() -> None:
    assert set(all_values(GATEWAY_UNIT, "DeviceAllow")) == {
        "char-ttyS rw", "char-ttyUSB rw", "char-ttyACM rw", "char-usb_device rw"}
    families = unit(GATEWAY_UNIT)["Service"]["RestrictAddressFamilies"].split()
    assert set(families) == {"AF_INET", "AF_INET6", "AF_UNIX", "AF_NETLINK"}
    assert "PrivateDevices" not in unit(GATEWAY_UNIT)["Service"]  # it would hide the terminals


def test_gateway_stop_timeout_outlasts_an_upstream_request_in_flight() -> None:
    service = unit(GATEWAY_UNIT)["Service"]
    assert seconds(service["TimeoutStopSec"]) > 2 * DEFAULT_UPSTREAM_TIMEOUT_S


def test_center_unit_runs_the_center_as_its_own_user_without_devices() -> None:
    service = unit(CENTER_UNIT)["Service"]
    assert service["ExecStart"].split()[1:] == ["center", "-c", "/etc/posgw/center.toml"]
    assert service["User"] == "posgw-center"
    assert all_values(CENTER_UNIT, "ReadWritePaths") == [f"/var/lib/{service['StateDirectory']}"]
    assert service["PrivateDevices"] == "yes"
    assert all_values(CENTER_UNIT, "DeviceAllow") == []
    assert "AF_NETLINK" not in service["RestrictAddressFamilies"]


@pytest.mark.parametrize("path", [GATEWAY_UNIT, CENTER_UNIT], ids=lambda p: p.name)
def test_unit_sets_a_descriptor_limit_above_the_listeners_caps(path: Path) -> None:
    """Issue 17: without LimitNOFILE held sockets met EMFILE at 1,024."""
    limit = int(unit(path)["Service"]["LimitNOFILE"])
    assert limit >= 8 * SessionLimits().max_connections + DAEMON_DESCRIPTORS


@pytest.mark.parametrize("path", [GATEWAY_UNIT, CENTER_UNIT], ids=lambda p: p.name)
def test_unit_sets_each_single_valued_key_once(path: Path) -> None:
    # ConfigParser(strict=False) silently keeps the last of two; systemd would too.
    keys = [line.split("=", 1)[0] for line in path.read_text().splitlines()
            if "=" in line and not line.startswith("#")]
    repeated = {key for key in keys if keys.count(key) > 1} - REPEATABLE
    assert repeated == set()


@pytest.mark.parametrize("path", [GATEWAY_UNIT, CENTER_UNIT], ids=lambda p: p.name)
def test_systemd_analyze_verify_accepts_the_unit(path: Path, tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    # verify checks that ExecStart exists: point it at this checkout's script.
    script = Path(sys.executable).with_name("posgw")
    copy = tmp_path / path.name
    copy.write_text(path.read_text().replace("/opt/posgw/venv/bin/posgw", str(script)))
    result = subprocess.run([analyze, "verify", str(copy)], capture_output=True, text=True,
                            timeout=60)
    # Unknown keys and bad values are only warnings (status 0) naming the file.
    complaints = [line for line in (result.stdout + result.stderr).splitlines()
                  if path.name in line]
    assert (result.returncode, complaints) == (0, []), result.stderr


# --- udev rules -----------------------------------------------------------------


def test_every_udev_rule_matches_a_device_and_assigns_something() -> None:
    rules = udev_rules()
    assert rules
    for rule in rules:
        assert matches(rule).get("SUBSYSTEM") in ("tty", "usb"), rule
        assert any(key.startswith("ATTR") for key in matches(rule)), rule
        assert assigns(rule), rule


def test_serial_rules_link_under_dev_posgw_by_vendor_and_serial_for_dialout() -> None:
    tty_rules = [rule for rule in udev_rules() if matches(rule)["SUBSYSTEM"] == "tty"]
    assert tty_rules
    for rule in tty_rules:
        match, assign = matches(rule), assigns(rule)
        assert assign["SYMLINK"].startswith("posgw/"), rule
        assert {"ATTRS{idVendor}", "ATTRS{serial}"} <= set(match), rule
        assert (assign["GROUP"], assign["MODE"]) == ("dialout", "0660"), rule


def test_per_terminal_examples_pin_vid_pid_and_serial_including_an_ftdi_adapter() -> None:
    named = [matches(rule) for rule in udev_rules()
             if "ATTRS{idProduct}" in matches(rule)]
    assert ("0403", "6001") in {(m["ATTRS{idVendor}"], m["ATTRS{idProduct}"]) for m in named}
    assert all(m["ATTRS{serial}"] not in ("", "?*") for m in named)


def test_every_shipped_profile_usb_vendor_has_a_serial_link_and_plugdev_access() -> None:
    vendors = {f"{match.vid:04x}" for name in builtin_names()
               for match in load_profile(name).transport.usb}
    assert vendors >= {"0b00", "079b", "11ca"}
    rules = udev_rules()
    linked = {matches(r)["ATTRS{idVendor}"] for r in rules if "SYMLINK" in assigns(r)}
    plugdev = {matches(r)["ATTR{idVendor}"] for r in rules
               if matches(r)["SUBSYSTEM"] == "usb" and assigns(r).get("GROUP") == "plugdev"
               and assigns(r).get("MODE") == "0660"}
    assert vendors <= linked
    assert vendors <= plugdev


def test_udevadm_verify_accepts_the_rules() -> None:
    udevadm = shutil.which("udevadm")
    if udevadm is None:
        pytest.skip("udevadm is not installed")
    probe = subprocess.run([udevadm, "verify", "--help"], capture_output=True, timeout=30)
    if probe.returncode != 0:
        pytest.skip("this udevadm has no verify command (systemd < 254)")
    result = subprocess.run([udevadm, "verify", str(RULES)], capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
