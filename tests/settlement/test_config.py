"""`[settlement]` in center.toml: defaults, values, and what is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from posgw.center.config import SettlementConfig, load_center_config
from posgw.protocols.config_error import ConfigError


def config_with(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "center.toml"
    path.write_text(f'[center]\ndatabase = "sqlite:///{tmp_path}/c.db"\n{text}')
    return path


def test_the_defaults_are_t_plus_one_with_a_day_of_grace(tmp_path: Path) -> None:
    settlement = load_center_config(config_with(tmp_path, ""), {}).settlement
    assert settlement == SettlementConfig(value_days=1, credit_grace_days=1)


def test_the_keys_are_read(tmp_path: Path) -> None:
    path = config_with(tmp_path, "[settlement]\nvalue_days = 2\ncredit_grace_days = 0\n")
    assert load_center_config(path, {}).settlement == SettlementConfig(2, 0)


@pytest.mark.parametrize(("text", "key"), [("value_days = -1", "value_days"),
                                           ("credit_grace_days = 31", "credit_grace_days"),
                                           ("value_days = \"1\"", "value_days"),
                                           ("grace = 1", "grace")])
def test_a_wrong_value_or_unknown_key_names_it(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        load_center_config(config_with(tmp_path, f"[settlement]\n{text}\n"), {})
