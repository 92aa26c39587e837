"""`[cases]`: freeze case deadlines and the evidence directory."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from posgw.gateway.config import DEFAULT_EVIDENCE_DIR, parse_config
from posgw.protocols.config_error import ConfigError
from tests.center_key import with_center_key


def config(cases: dict[str, Any] | None = None, database: str | None = None) -> Any:
    gateway = {"branch_id": "B001", "gateway_id": "gw-1"}
    if database is not None:
        gateway["database"] = database
    table: dict[str, Any] = {"gateway": gateway}
    if cases is not None:
        table["cases"] = cases
    return parse_config(with_center_key(table), "gw.toml")


def test_defaults_are_24_hours_to_respond_and_30_days_to_expiry() -> None:
    policy = config().cases.policy
    assert (policy.first_response, policy.expire_after) == (timedelta(hours=24),
                                                            timedelta(days=30))


def test_evidence_is_kept_beside_a_sqlite_database_by_default() -> None:
    assert config(database="sqlite:////srv/posgw/gateway.db").cases.evidence_dir == \
        "/srv/posgw/evidence"
    assert config(database="postgresql+psycopg://gw@db/posgw").cases.evidence_dir == \
        DEFAULT_EVIDENCE_DIR


def test_every_key_can_be_set() -> None:
    cases = config({"first_response_h": 4, "expire_after_days": 10,
                    "evidence_dir": "/data/evidence", "evidence_max_mb": 5}).cases
    assert cases.policy.first_response == timedelta(hours=4)
    assert cases.policy.expire_after == timedelta(days=10)
    assert (cases.evidence_dir, cases.evidence_max_bytes) == ("/data/evidence", 5 << 20)


@pytest.mark.parametrize(("cases", "key"), [
    ({"first_response_h": 0}, "cases.first_response_h"),
    ({"first_response_h": 48, "expire_after_days": 1}, "cases.expire_after_days"),
    ({"expire_after_days": "30"}, "cases.expire_after_days"),
    ({"expire_days": 30}, "cases.expire_days"),
])
def test_a_mistake_names_the_key(cases: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as error:
        config(cases)
    assert key in str(error.value) and "gw.toml" in str(error.value)
