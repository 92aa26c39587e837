"""`posgw profiles list` and `posgw profiles check`."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from posgw.cli.main import main
from posgw.gateway.profiles import builtin_names


def test_list_shows_every_shipped_profile_with_its_transport() -> None:
    result = CliRunner().invoke(main, ["profiles", "list"])
    assert result.exit_code == 0
    for name in builtin_names():
        assert name in result.output
    assert "serial" in result.output and "usb" in result.output


def test_check_accepts_every_shipped_profile() -> None:
    root = Path(__file__).resolve().parents[2] / "firmware_profiles"
    paths = [str(p) for p in sorted(root.glob("*.toml"))]
    result = CliRunner().invoke(main, ["profiles", "check", *paths])
    assert result.exit_code == 0, result.output
    assert result.output.count(": ok") == len(paths)


def test_check_reports_every_problem_with_file_key_and_reason(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[profile]\nname = "bad"\n'
        '[transport]\nkind = "carrier-pigeon"\n'
        '[iso8583.fields]\n'
        '2 = { type = "n", len = "LLVAR" }\n'  # no max
        '4 = { type = "q", max = 12 }\n'  # unknown type
        '52 = { type = "b", max = 8, enc = "ascii" }\n'  # binary cannot be ascii
    )
    result = CliRunner().invoke(main, ["profiles", "check", str(bad)])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 4
    assert all(line.startswith(f"{bad}: ") for line in lines)
    keys = [line.split(": ")[1] for line in lines]
    assert keys == ["transport.kind", "iso8583.fields.2.max", "iso8583.fields.4.type",
                    "iso8583.fields.52.enc"]


def test_check_reports_toml_syntax_errors(tmp_path: Path) -> None:
    bad = tmp_path / "broken.toml"
    bad.write_text("[profile\nname = ")
    result = CliRunner().invoke(main, ["profiles", "check", str(bad)])
    assert result.exit_code == 1
    assert str(bad) in result.output
