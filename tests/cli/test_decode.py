"""`posgw decode` and `posgw encode` from the outside: real console script, real bytes."""

from __future__ import annotations

import json
from pathlib import Path

import iso8583
import iso8583.specs
import pytest
from click.testing import CliRunner

from posgw.cli.main import main
from tests.posgw_script import run_posgw

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
PAN = "4761739001010010"
ICC_HEX = "9F02060000000125009F2701809F1A0203805A0847617390010100105F2A020978"
PEER_DOC = {
    "t": "0200", "2": PAN, "3": "000000", "4": "000000012500", "7": "1123101530",
    "11": "000123", "12": "101530", "13": "1123", "22": "051", "25": "00",
    "37": "632710000123", "41": "T0000001", "42": "M00000000000001", "49": "978",
    "55": ICC_HEX, "100": "12345",
}




def with_length_header(message: bytes) -> str:
    return (len(message).to_bytes(2, "big") + message).hex()


@pytest.mark.parametrize(
    ("profile", "peer_spec"),
    [("iso87-ascii", iso8583.specs.default_ascii), ("iso87-mixed", iso8583.specs.default)],
)
def test_decode_json_gives_pyiso8583_values_with_pan_masked(profile: str, peer_spec: dict) -> None:
    wire, _ = iso8583.encode(dict(PEER_DOC), peer_spec)
    peer_view, _ = iso8583.decode(bytes(wire), peer_spec)
    result = run_posgw("decode", "--profile", profile, "--hex", with_length_header(bytes(wire)),
                       "--json")
    assert result.returncode == 0, result.stderr
    ours = json.loads(result.stdout)
    expected = {k: v for k, v in peer_view.items() if k not in ("t", "p", "1")}
    expected["2"] = "476173******0010"
    expected["55"] = ICC_HEX.replace("4761739001010010", "*" * 16)  # tag 5A: the PAN
    assert ours["mti"] == peer_view["t"]
    assert ours["fields"] == expected
    assert ours["tlv"]["9F02"] == "000000012500"
    assert ours["tlv"]["5A"] == "476173******0010"  # the PAN inside field 55 is masked too
    assert ours["normalized"]["amount_minor"] == 12500
    assert PAN not in result.stdout


@pytest.mark.parametrize("sample", sorted(SAMPLES.glob("*.bin")), ids=lambda p: p.stem)
def test_every_shipped_sample_decodes_without_showing_the_pan(sample: Path) -> None:
    profile = sample.stem.rsplit("-", 1)[0]
    result = CliRunner().invoke(main, ["decode", "--profile", profile, "--file", str(sample)])
    assert result.exit_code == 0, result.output
    assert "purchase" in result.output
    assert "******" in result.output
    for clear in (PAN, "6212345678901234", "0123456789ABCDEF"):
        assert clear not in result.output


def test_bad_field_exits_2_with_one_line_naming_field_and_offset() -> None:
    wire, _ = iso8583.encode({"t": "0200", "3": "000000", "4": "000000012500"},
                             iso8583.specs.default_ascii)
    corrupt = bytes(wire).replace(b"000000012500", b"0000000125X0")
    result = run_posgw("decode", "-p", "iso87-ascii", "--bare", "--hex", corrupt.hex())
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "posgw decode: field 4 at offset 26: non-digit in numeric field"
    ]


def test_truncated_frame_exits_2_and_suggests_bare() -> None:
    result = CliRunner().invoke(main, ["decode", "-p", "iso87-ascii", "--hex", "00ff3032"])
    assert result.exit_code == 2
    assert "no complete frame" in result.output


def test_unknown_profile_exits_2_listing_the_shipped_ones() -> None:
    result = CliRunner().invoke(main, ["decode", "-p", "nope", "--hex", "00"])
    assert result.exit_code == 2
    assert "iso87-ascii" in result.output


@pytest.mark.parametrize("profile", ["iso87-ascii", "iso87-binary", "unionpay-tpdu",
                                     "ecr-stx-lrc", "ecr-zvt-crc", "iso93-ascii"])
def test_encode_then_decode_round_trips_through_the_cli(profile: str, tmp_path: Path) -> None:
    mti = "1200" if profile == "iso93-ascii" else "0200"
    source = {"mti": mti, "fields": {"3": "000000", "4": "000000001000", "11": "000042",
                                     "41": "T0000009", "52": "00112233445566FF"}}
    path = tmp_path / "message.json"
    path.write_text(json.dumps(source))
    encoded = CliRunner().invoke(main, ["encode", "-p", profile, "--json", str(path)])
    assert encoded.exit_code == 0, encoded.output
    decoded = CliRunner().invoke(main, ["decode", "-p", profile, "--hex", encoded.output,
                                        "--json"])
    assert decoded.exit_code == 0, decoded.output
    fields = json.loads(decoded.output)["fields"]
    assert fields["4"] == "000000001000"
    assert fields["41"] == "T0000009"
    assert fields["52"] == "****************"
