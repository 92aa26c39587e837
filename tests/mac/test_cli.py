"""`posgw keys mac generate | rotate | show` from the outside: the real console
script on a temporary keys directory. No key ever reaches the output."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from posgw.gateway.security.mac_keys import MAC_KEY_FILE, load_mac_keys
from tests.cli.test_status import run_posgw

TERMINAL = "T0000902"


def generate(directory: Path, terminal: str = TERMINAL,
             algorithm: str = "iso9797-1-alg3") -> str:
    result = run_posgw("keys", "mac", "generate", "--dir", str(directory),
                       "--terminal", terminal, "--algorithm", algorithm)
    assert result.returncode == 0, result.stderr
    return result.stdout


def key_hexes(directory: Path) -> list[str]:
    keys = load_mac_keys(directory).values()
    return [k.key.hex().upper() for entry in keys
            for k in (entry.current, *((entry.previous.key,) if entry.previous else ()))]


def test_generate_writes_a_0600_file_and_prints_id_and_check_value_only(tmp_path: Path) -> None:
    directory = tmp_path / "keys"
    out = generate(directory)
    [entry] = load_mac_keys(directory).values()
    assert stat.S_IMODE((directory / MAC_KEY_FILE).stat().st_mode) == 0o600
    assert f"iso9797-1-alg3 key id 1, check value {entry.current.check_value}" in out
    assert entry.current.key.hex().upper() not in out.upper()


def test_rotate_then_show_lists_current_and_previous_by_check_value(tmp_path: Path) -> None:
    generate(tmp_path, "T0000001", "aes-cmac")
    rotated = run_posgw("keys", "mac", "rotate", "--dir", str(tmp_path), "--terminal",
                        "T0000001", "--grace-s", "3600")
    assert rotated.returncode == 0, rotated.stderr
    entry = load_mac_keys(tmp_path)["T0000001"]
    assert entry.previous is not None
    assert f"key id 2, check value {entry.current.check_value}" in rotated.stdout
    assert "previous key id 1 verifies until" in rotated.stdout
    shown = run_posgw("keys", "mac", "show", "--dir", str(tmp_path), "--json")
    assert shown.returncode == 0, shown.stderr
    view = json.loads(shown.stdout)["T0000001"]
    assert (view["key_id"], view["check_value"]) == (2, entry.current.check_value)
    assert view["previous"]["check_value"] == entry.previous.key.check_value
    for secret in key_hexes(tmp_path):
        assert secret not in (rotated.stdout + shown.stdout).upper()


def test_generate_refuses_a_terminal_that_has_a_key(tmp_path: Path) -> None:
    generate(tmp_path)
    again = run_posgw("keys", "mac", "generate", "--dir", str(tmp_path), "--terminal",
                      TERMINAL, "--algorithm", "aes-cmac")
    assert again.returncode == 2 and "rotate it instead" in again.stderr


def test_a_key_file_others_may_read_is_refused_by_every_command(tmp_path: Path) -> None:
    generate(tmp_path)
    os.chmod(tmp_path / MAC_KEY_FILE, 0o644)
    for command in (["show"], ["rotate", "--terminal", TERMINAL]):
        result = run_posgw("keys", "mac", *command, "--dir", str(tmp_path))
        assert result.returncode == 2, command
        assert "mode 0644" in result.stderr and "chmod 600" in result.stderr
        assert result.stdout == ""
    assert stat.S_IMODE((tmp_path / MAC_KEY_FILE).stat().st_mode) == 0o644  # left untouched


def test_show_for_a_terminal_without_a_key_exits_1(tmp_path: Path) -> None:
    generate(tmp_path)
    result = run_posgw("keys", "mac", "show", "--dir", str(tmp_path), "--terminal", "T9")
    assert result.returncode == 1 and "terminal T9 has no MAC key" in result.stderr
