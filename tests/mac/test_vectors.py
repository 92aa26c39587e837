"""Published known-answer vectors for the two MAC algorithms and the key check value."""

from __future__ import annotations

import pytest

from posgw.protocols.mac import MacAlgorithm, MacError, MacKey, aes_cmac, compute_mac, retail_mac
from posgw.protocols.mac.algorithms import key_check_value, pad

# ISO/IEC 9797-1:1999 Annex B.4 (MAC algorithm 3, DES): K = 0123456789ABCDEF,
# K' = FEDCBA9876543210; the annex prints the MAC truncated to m = 32 bits.
ANNEX_B_KEY = bytes.fromhex("0123456789ABCDEF" "FEDCBA9876543210")
DATA_1 = b"Now is the time for all "  # 24 bytes: whole blocks
DATA_2 = b"Now is the time for it"  # 22 bytes: padded

# NIST SP 800-38B appendix D.1/D.3 (= RFC 4493 section 4) AES-CMAC examples.
AES128 = bytes.fromhex("2B7E151628AED2A6ABF7158809CF4F3C")
AES256 = bytes.fromhex("603DEB1015CA71BE2B73AEF0857D7781" "1F352C073B6108D72D9810A30914DFF4")
SP800_38B_MESSAGE = bytes.fromhex(
    "6BC1BEE22E409F96E93D7E117393172A"
    "AE2D8A571E03AC9C9EB76FAC45AF8E51"
    "30C81C46A35CE411E5FBC1191A0A52EF"
    "F69F2445DF4F9B17AD2B417BE66C3710")


@pytest.mark.parametrize(("data", "padding", "mac32"), [
    (DATA_1, 1, "A1C72E74"),
    (DATA_1, 2, "E9086230"),
    (DATA_2, 1, "2E2B1428"),
    (DATA_2, 2, "5A692CE6"),
])
def test_retail_mac_matches_iso_9797_1_annex_b4(data: bytes, padding: int, mac32: str) -> None:
    assert retail_mac(ANNEX_B_KEY, data, padding)[:4].hex().upper() == mac32


def test_retail_mac_full_64_bits_matches_bouncy_castle_iso9797alg3mac_vector() -> None:
    # bc-java ISO9797Alg3MacTest: a 16-byte input needs no zero padding.
    key = bytes.fromhex("7CA110454A1A6E570131D9619DC1376E")
    assert retail_mac(key, b"Hello World !!!!", 1).hex().upper() == "F09B856213BAB83B"


@pytest.mark.parametrize(("data", "mac"), [
    ("72C29C2371CC9BDB65B779B8E8D37B29ECC154AA56A8799FAE2F498F76ED92F2", "5F1448EEA8AD90A7"),
    ("46B9342A41396CD7386BF5803104D7CEDC122B9132139BAF2EEDC94EE178534F", "2F2D235D074D7449"),
])
def test_retail_mac_with_padding_2_matches_icao_9303_part_11_appendix_d3(data: str,
                                                                         mac: str) -> None:
    # ICAO Doc 9303 part 11, D.3: the EIFD and EICC cryptograms MACed under K_MAC.
    key = bytes.fromhex("7962D9ECE03D1ACD4C76089DCE131543")
    assert retail_mac(key, bytes.fromhex(data), 2).hex().upper() == mac


@pytest.mark.parametrize(("key", "length", "tag"), [
    (AES128, 0, "BB1D6929E95937287FA37D129B756746"),
    (AES128, 16, "070A16B46B4D4144F79BDD9DD04A287C"),
    (AES128, 40, "DFA66747DE9AE63030CA32611497C827"),
    (AES128, 64, "51F0BEBF7E3B9D92FC49741779363CFE"),
    (AES256, 0, "028962F61B7BF89EFC6B551F4667D983"),
    (AES256, 64, "E1992190549F6ED5696A2C056C315410"),
])
def test_aes_cmac_matches_nist_sp_800_38b_examples(key: bytes, length: int, tag: str) -> None:
    assert aes_cmac(key, SP800_38B_MESSAGE[:length]).hex().upper() == tag


def test_aes_cmac_in_a_mac_field_is_the_leftmost_64_bits_of_the_tag() -> None:
    key = MacKey(MacAlgorithm.AES_CMAC, AES128)
    assert compute_mac(key, SP800_38B_MESSAGE[:16]).hex().upper() == "070A16B46B4D4144"


def test_check_value_of_the_classic_double_length_test_key() -> None:
    # 0123456789ABCDEF FEDCBA9876543210 is the payment test key whose KCV
    # (TDEA-encrypted zero block, 6 digits) HSM manuals print as 08D7B4.
    assert key_check_value(MacAlgorithm.RETAIL, ANNEX_B_KEY) == "08D7B4"


def test_aes_check_value_is_the_cmac_of_a_zero_block() -> None:
    expected = aes_cmac(AES128, bytes(16))[:3].hex().upper()
    assert key_check_value(MacAlgorithm.AES_CMAC, AES128) == expected


@pytest.mark.parametrize(("data", "method", "padded"), [
    ("", 1, "0000000000000000"),  # a positive number of blocks, even for nothing
    ("0102", 1, "0102000000000000"),
    ("0102030405060708", 1, "0102030405060708"),
    ("", 2, "8000000000000000"),
    ("0102030405060708", 2, "01020304050607088000000000000000"),
])
def test_padding_methods_1_and_2(data: str, method: int, padded: str) -> None:
    assert pad(bytes.fromhex(data), method).hex().upper() == padded


@pytest.mark.parametrize(("algorithm", "key", "reason"), [
    (MacAlgorithm.RETAIL, bytes(8), "16 bytes"),
    (MacAlgorithm.RETAIL, bytes.fromhex("0123456789ABCDEF" * 2), "K and K' must differ"),
    (MacAlgorithm.AES_CMAC, bytes(15), "16, 24 or 32"),
])
def test_unusable_keys_are_refused_without_quoting_them(algorithm: MacAlgorithm, key: bytes,
                                                       reason: str) -> None:
    with pytest.raises(MacError, match=reason) as caught:
        MacKey(algorithm, key)
    assert key.hex() not in str(caught.value).lower()


def test_a_mac_key_never_shows_its_bytes() -> None:
    key = MacKey(MacAlgorithm.RETAIL, ANNEX_B_KEY)
    assert "0123" not in repr(key).upper() and key.check_value == "08D7B4"
