"""The wheel holds one package, `posgw`, and works installed outside the checkout."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: What a build or a run leaves in a checkout; never part of the source.
NOT_SOURCE = shutil.ignore_patterns(".venv", ".git", "build", "dist", "*.egg-info",
                                    "__pycache__", ".*_cache", ".hypothesis")
SAMPLE = ROOT / "samples" / "iso87-ascii-purchase.bin"


def clean_env() -> dict[str, str]:
    """No PYTHONPATH or venv of the checkout leaks into the installed venv."""
    return {key: value for key, value in os.environ.items()
            if key not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`pip wheel --no-deps` of a copy of the checkout (a build in place
    leaves build/ behind, whose stale files a later wheel would carry)."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "src"
    shutil.copytree(ROOT, source, symlinks=True, ignore=NOT_SOURCE)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
                    "-w", str(work / "out"), str(source)], check=True, capture_output=True,
                   env=clean_env())
    [built] = (work / "out").glob("posgw-*.whl")
    return built


def top_level(names: list[str]) -> set[str]:
    return {name.split("/")[0] for name in names}


def test_the_wheel_holds_only_posgw_and_its_dist_info(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    entries = top_level(names)
    dist_info = {entry for entry in entries if entry.endswith(".dist-info")}
    assert entries - dist_info == {"posgw"} and len(dist_info) == 1
    # The parts arrive as real files under posgw/, data included.
    assert {"posgw/gateway/daemon.py", "posgw/cli/main.py", "posgw/protocols/__init__.py",
            "posgw/firmware_profiles/iso87-ascii.toml"} <= set(names)


def test_the_wheel_carries_the_consoles_templates_stylesheet_and_catalogues(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert {"posgw/center/web/templates/base.html", "posgw/center/web/static/console.css",
            "posgw/center/web/locale/vi/LC_MESSAGES/messages.po",
            "posgw/center/web/locale/zh_Hans/LC_MESSAGES/messages.po"} <= names


@pytest.mark.e2e
def test_installed_in_a_fresh_venv_it_lists_profiles_and_decodes_a_sample(
        wheel: Path, tmp_path: Path) -> None:
    venv, cwd = tmp_path / "venv", tmp_path / "elsewhere"
    cwd.mkdir()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    # Dependencies come from the index; pip's cache (kept by default) makes
    # repeated runs quick.
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(wheel)], check=True,
                   capture_output=True, env=clean_env(), cwd=cwd)
    shutil.copy(SAMPLE, cwd / SAMPLE.name)

    def run(*args: str) -> str:
        done = subprocess.run(args, capture_output=True, text=True, cwd=cwd, env=clean_env())
        assert done.returncode == 0, done.stderr
        return done.stdout

    posgw = str(venv / "bin" / "posgw")
    assert "iso87-ascii" in run(posgw, "profiles", "list")
    dump = run(posgw, "decode", "--profile", "iso87-ascii", "--file", SAMPLE.name)
    assert "MTI 0200" in dump and "476173******0010" in dump
    resolved = run(str(venv / "bin" / "python"), "-c",
                   "import posgw.cli.main, posgw.gateway; "
                   "print(posgw.cli.main.__file__); print(posgw.gateway.__file__)")
    for line in resolved.split():
        assert Path(line).is_relative_to(venv), line
    # What pip put in site-packages: posgw, its dist-info, and the script in bin/.
    [record] = venv.glob("lib/python*/site-packages/posgw-*.dist-info/RECORD")
    paths = [line.split(",")[0] for line in record.read_text().splitlines()]
    assert top_level([p for p in paths if not p.startswith("..")]) == {
        "posgw", record.parent.name}

