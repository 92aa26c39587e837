"""The editable install (the one tests run against) resolves every part of
`posgw` to its folder in this checkout."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PARTS = ("protocols", "drivers", "gateway", "center", "simulator", "sandbox", "cli",
         "firmware_profiles", "schemas")


@pytest.mark.parametrize("part", PARTS)
def test_each_part_resolves_to_its_folder_in_the_checkout(part: str) -> None:
    module = importlib.import_module(f"posgw.{part}")
    assert module.__file__ is not None
    assert Path(module.__file__).resolve() == ROOT / part / "__init__.py"


def test_the_package_face_is_the_checkouts() -> None:
    import posgw

    assert posgw.__file__ is not None and Path(posgw.__file__).resolve() == \
        ROOT / "posgw" / "__init__.py"
