"""LRC and the ZVT CRC-16: known answers and the byte order on the wire."""

from __future__ import annotations

import binascii

import pytest
from hypothesis import given
from hypothesis import strategies as st

from posgw.protocols.framing import CrcCheck, LrcCheck, crc16_kermit, lrc_xor
from posgw.protocols.iso8583.errors import SpecError


def _reflect(value: int, width: int) -> int:
    return int(f"{value:0{width}b}"[::-1], 2)


def test_lrc_of_nothing_is_the_seed() -> None:
    assert lrc_xor(b"") == 0x00
    assert lrc_xor(b"", seed=0x7F) == 0x7F


def test_lrc_folds_data_and_etx() -> None:
    # "0200|123|" + ETX, the worked example of an ECR LRC (data + ETX, STX excluded)
    data = bytes.fromhex("30 32 30 30 7C 31 32 33 7C 03")
    assert lrc_xor(data) == 0x31


def test_lrc_seed_0x7f_over_stx_and_etx() -> None:
    # Nexi ECR17 base 0x7F; an empty message with STX and ETX covered: 7F ^ 02 ^ 03
    assert lrc_xor(bytes.fromhex("02 03"), seed=0x7F) == 0x7E


def test_lrc_check_digest_is_one_byte() -> None:
    assert LrcCheck(0x7F).digest(bytes.fromhex("41 42 43 03")) == bytes.fromhex("3C")


def test_lrc_seed_out_of_range_is_a_spec_error() -> None:
    with pytest.raises(SpecError) as raised:
        LrcCheck(0x100)
    assert raised.value.key == "framing.lrc_seed"


def test_crc16_kermit_check_value() -> None:
    # CRC-16/KERMIT catalogue check value
    assert crc16_kermit(b"123456789") == 0x2189


def test_crc_check_sends_low_byte_first() -> None:
    assert CrcCheck().digest(b"123456789") == bytes.fromhex("89 21")


def test_crc16_kermit_continues_a_run() -> None:
    assert crc16_kermit(b"6789", crc16_kermit(b"12345")) == 0x2189


@given(st.binary(max_size=64))
def test_crc16_kermit_is_reflected_xmodem(data: bytes) -> None:
    # Independent oracle: the stdlib's unreflected CCITT (XMODEM) over bit-reversed
    # bytes, bit-reversed again, is the reflected (KERMIT) CRC.
    reflected_input = bytes(_reflect(byte, 8) for byte in data)
    assert crc16_kermit(data) == _reflect(binascii.crc_hqx(reflected_input, 0), 16)
