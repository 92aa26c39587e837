"""ISO 9564 format 0 PIN blocks under the test TDES key."""

from __future__ import annotations

from posgw.simulator.pinblock import (
    clear_pin_block,
    decrypt_pin,
    encrypt_pin_block,
    verify_pin,
)

PAN = "4111111111111111"


def test_clear_block_is_pin_field_xor_pan_field() -> None:
    # PIN field 04 1234 FFFFFFFFFF XOR PAN field 0000 111111111111 (check digit dropped)
    assert clear_pin_block("1234", PAN).hex().upper() == "041225EEEEEEEEEE"


def test_clear_block_matches_the_published_format_0_example() -> None:
    # PIN 1234, PAN 43219876543210987: the ISO 9564 / X9.8 textbook example
    assert clear_pin_block("1234", "43219876543210987").hex().upper() == "0412AC89ABCDEF67"


def test_encrypted_block_known_answer_under_test_key() -> None:
    # TDES-ECB, key 0123456789ABCDEF FEDCBA9876543210; checked with
    # `openssl enc -des-ede -K 0123456789ABCDEFFEDCBA9876543210 -nopad`
    assert encrypt_pin_block("1234", PAN).hex().upper() == "2A3D408A1977DDE9"


def test_decrypt_recovers_the_pin() -> None:
    assert decrypt_pin(encrypt_pin_block("987654", PAN), PAN) == "987654"


def test_verify_rejects_a_wrong_pin() -> None:
    assert not verify_pin(encrypt_pin_block("1234", PAN), PAN, "4321")


def test_verify_rejects_a_block_made_for_another_pan() -> None:
    block = encrypt_pin_block("1234", "5413330089010608")
    assert not verify_pin(block, PAN, "1234")
