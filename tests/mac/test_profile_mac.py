"""A profile's `[mac]` table: what the shipped profiles declare, and every
mistake reported as file: key: reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from posgw.gateway.profiles import check_profile, load_profile
from posgw.protocols.iso8583.errors import SpecError
from posgw.protocols.mac import MacAlgorithm, MacSpec


def test_unionpay_macs_field_64_with_the_retail_mac_and_answers_a0() -> None:
    assert load_profile("unionpay-tpdu").mac == MacSpec(
        field=64, algorithm=MacAlgorithm.RETAIL, error_response="A0", padding=1, required=True)


def test_iso87_binary_macs_field_128_with_aes_cmac_and_answers_63() -> None:
    assert load_profile("iso87-binary").mac == MacSpec(
        field=128, algorithm=MacAlgorithm.AES_CMAC, error_response="63", required=True)


def test_profiles_without_a_mac_table_have_none() -> None:
    assert load_profile("iso87-ascii").mac is None


def child(tmp_path: Path, base: str, mac: str) -> Path:
    path = tmp_path / "terminal.toml"
    path.write_text(f'[profile]\nname = "child"\nextends = "{base}"\n\n[mac]\n{mac}\n')
    return path


@pytest.mark.parametrize(("base", "mac", "key", "reason"), [
    ("iso87-binary", "field = 64", "mac.field",
     "field 64 must be the last field a message can carry; the profile defines field 128"),
    ("iso87-binary", "field = 96", "mac.field", "must be one of 64, 128"),
    ("iso87-ascii", 'field = 64\nalgorithm = "aes-cmac"\nerror_response = "63"', "mac.field",
     'field 64 must be defined in [iso8583.fields] as fixed 8-byte binary'),
    ("unionpay-tpdu", 'algorithm = "hmac-sha256"', "mac.algorithm",
     "must be one of iso9797-1-alg3, aes-cmac"),
    ("iso87-binary", "padding = 2", "mac.padding", "AES-CMAC pads by its own rule"),
    ("unionpay-tpdu", "padding = 3", "mac.padding", "must be one of 1, 2"),
    ("unionpay-tpdu", 'error_response = "916"', "mac.error_response",
     "must be an ISO 8583:1987 field 39 code of 2 characters"),
    ("unionpay-tpdu", 'error_response = "00"', "mac.error_response", "00 is an approval code"),
    ("unionpay-tpdu", 'required = "yes"', "mac.required", "must be true or false"),
    ("unionpay-tpdu", "key = 1", "mac.key", "unknown key"),
])
def test_a_bad_mac_table_names_file_key_and_reason(tmp_path: Path, base: str, mac: str,
                                                  key: str, reason: str) -> None:
    path = child(tmp_path, base, mac)
    [problem] = check_profile(str(path))
    assert (problem.source, problem.key) == (str(path), key)
    assert reason in problem.reason
    assert str(problem).startswith(f"{path}: {key}: ")


def test_the_mac_table_is_checked_against_the_fields_when_the_profile_loads(
        tmp_path: Path) -> None:
    path = child(tmp_path, "iso87-binary", "field = 64")
    with pytest.raises(SpecError, match=r"mac\.field: field 64 must be the last field"):
        load_profile(str(path))


def test_a_1993_profile_takes_a_three_digit_action_code(tmp_path: Path) -> None:
    path = tmp_path / "iso93-mac.toml"
    path.write_text('[profile]\nname = "iso93-mac"\nextends = "iso93-ascii"\n\n'
                    '[iso8583]\ntertiary_bitmap = false\n\n[iso8583.fields]\n'
                    '64 = { name = "MAC", type = "b", max = 8, enc = "binary" }\n'
                    '128 = { name = "MAC", type = "b", max = 8, enc = "binary" }\n\n'
                    '[mac]\nfield = 128\nalgorithm = "aes-cmac"\nerror_response = "916"\n')
    profile = load_profile(str(path))
    assert profile.mac is not None and profile.mac.error_response == "916"


def test_a_tertiary_bitmap_would_let_fields_follow_the_mac(tmp_path: Path) -> None:
    path = tmp_path / "iso93-mac.toml"
    path.write_text('[profile]\nname = "iso93-mac"\nextends = "iso93-ascii"\n\n'
                    '[iso8583.fields]\n'
                    '128 = { name = "MAC", type = "b", max = 8, enc = "binary" }\n\n'
                    '[mac]\nfield = 128\nalgorithm = "aes-cmac"\nerror_response = "916"\n')
    [problem] = check_profile(str(path))
    assert (problem.key, problem.reason) == (
        "mac.field", "a tertiary bitmap lets fields 129-192 follow the MAC field")
