"""`[cases]` in center.toml: the documented defaults, the values read, and
mistakes named by key."""

from __future__ import annotations

from pathlib import Path

import pytest

from posgw.center.config import CasesConfig, load_center_config
from posgw.protocols.config_error import ConfigError


def config_with(tmp_path: Path, cases: str) -> Path:
    path = tmp_path / "center.toml"
    path.write_text(f'[center]\ndatabase = "sqlite:///{tmp_path}/c.db"\n{cases}')
    return path


def test_without_cases_the_documented_defaults_hold(tmp_path: Path) -> None:
    cases = load_center_config(config_with(tmp_path, "")).cases
    assert cases == CasesConfig(reclear_working_days=5, return_working_days=15,
                                max_evidence_bytes=10 * 1024 * 1024, max_evidence_files=20,
                                reply_wait_s=5)


def test_cases_are_read(tmp_path: Path) -> None:
    cases = load_center_config(config_with(tmp_path, (
        "[cases]\nreclear_working_days = 3\nreturn_working_days = 20\n"
        "max_evidence_bytes = 2048\nmax_evidence_files = 4\nreply_wait_s = 0\n"))).cases
    assert cases == CasesConfig(3, 20, 2048, 4, 0)


@pytest.mark.parametrize(("text", "key"), [
    ("reclear_working_days = -1", "cases.reclear_working_days"),
    ("max_evidence_bytes = 10", "cases.max_evidence_bytes"),
    ("max_evidence_files = 0", "cases.max_evidence_files"),
    ("reply_wait_s = 3600", "cases.reply_wait_s"),
    ('evidence_dir = "/tmp"', "cases.evidence_dir"),  # evidence lives in the database
])
def test_a_mistake_in_cases_names_its_key(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_center_config(config_with(tmp_path, f"[cases]\n{text}\n"))
    assert caught.value.key == key
