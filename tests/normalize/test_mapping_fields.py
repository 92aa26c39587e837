"""normalize(): amounts, currency, ids, and NormalizeError for inconsistent content."""

from __future__ import annotations

import pytest

from posgw.protocols.iso8583.message import Message
from posgw.protocols.normalize import NormalizeError, normalize

from .examples import PAN, purchase_1987


def test_amount_is_an_integer_in_minor_units() -> None:
    assert normalize(purchase_1987()).amount_minor == 12345


def test_numeric_currency_maps_to_alpha_code() -> None:
    assert normalize(purchase_1987()).currency == "EUR"


def test_currency_not_in_the_table_stays_numeric() -> None:
    assert normalize(purchase_1987(f49="999")).currency == "999"


def test_currency_falls_back_on_emv_5f2a_when_field_49_is_absent() -> None:
    assert normalize(purchase_1987(f49=None)).currency == "EUR"


def test_terminal_and_merchant_ids_lose_their_space_padding() -> None:
    tx = normalize(purchase_1987())

    assert (tx.terminal_id, tx.merchant_id) == ("T0101", "M0001")


def test_times_and_ids_are_kept_as_sent() -> None:
    tx = normalize(purchase_1987(f37="250317000123"))

    assert (tx.stan, tx.rrn) == ("000123", "250317000123")
    assert (tx.transmission_time, tx.local_time, tx.local_date) == ("0317101530", "111530", "0317")
    assert (tx.processing_code, tx.pos_condition_code) == ("000000", "00")


def test_field_55_given_as_hex_text_is_parsed_like_bytes() -> None:
    tx = normalize(purchase_1987(f55="9F2701809F0206000000012345"))

    assert tx.emv == {"9F27": "80", "9F02": "000000012345"}


@pytest.mark.parametrize(
    ("message", "field"),
    [
        (purchase_1987(f4="12.50"), "4"),
        (purchase_1987(f4="٣٤"), "4"),  # Arabic-Indic digits are not ASCII digits
        (purchase_1987(f4=""), "4"),
        (Message("0900", {}), "mti"),
        (Message("9200", {}), "mti"),
        (Message("02X0", {}), "mti"),
        (purchase_1987(f2=PAN.encode()), "2"),  # binary where text belongs
        (purchase_1987(f2="4761"), "2"),  # too short for a PAN
        (purchase_1987(f2=None, f35="4761739001010010"), "35"),  # no separator
        (purchase_1987(f3="00000"), "3"),
        (purchase_1987(f11="12345A"), "11"),
        (purchase_1987(f22="5"), "22"),
        (purchase_1987(f49="EURO"), "49"),
        (purchase_1987(f55=bytes.fromhex("9F2608AABB")), "55"),
        (purchase_1987(f55="9F27018"), "55"),  # odd hex
        (purchase_1987(f90="0200"), "90"),
    ],
)
def test_inconsistent_content_raises_normalize_error_naming_the_field(
    message: Message, field: str
) -> None:
    with pytest.raises(NormalizeError) as raised:
        normalize(message)

    assert raised.value.field == field
    assert PAN not in str(raised.value)


def test_bad_tlv_error_gives_the_offset_inside_the_field() -> None:
    with pytest.raises(NormalizeError, match="offset 5"):
        normalize(purchase_1987(f55=bytes.fromhex("9C0100 9F2608AABB")))
