"""build_response(): MTI, echoed fields, 37/38/39, and what is never sent back."""

from __future__ import annotations

import pytest

from posgw.protocols.iso8583.errors import EncodeError
from posgw.protocols.iso8583.message import Message
from posgw.protocols.normalize import build_response, response_mti

from .examples import ORIGINAL_DATA_ELEMENTS, purchase_1987, with_mti


def test_approval_of_a_purchase_is_a_0210_with_auth_code_rrn_and_response_code() -> None:
    response = build_response(
        purchase_1987(), response_code="00", auth_code="A1B2C3", rrn="250317000123"
    )

    assert response.mti == "0210"
    assert (response.fields[37], response.fields[38], response.fields[39]) == (
        "250317000123",
        "A1B2C3",
        "00",
    )


def test_approval_echoes_the_fields_the_terminal_matches_on() -> None:
    request = purchase_1987()

    response = build_response(request, response_code="00", auth_code="123456")

    for number in (3, 4, 7, 11, 12, 13, 25, 41, 42, 49):
        assert response.fields[number] == request.fields[number], number


def test_decline_carries_no_auth_code_even_when_one_is_given() -> None:
    response = build_response(purchase_1987(), response_code="51", auth_code="123456")

    assert response.fields[39] == "51"
    assert 38 not in response.fields


def test_response_never_echoes_pan_expiry_tracks_pin_block_or_chip_data() -> None:
    request = purchase_1987(f45="B4761739001010010^DOE/JOHN^2212")

    response = build_response(request, response_code="00")

    assert not {2, 14, 22, 35, 45, 52, 55} & set(response.fields)


def test_issuer_chip_data_is_sent_when_given_as_extra_field_55() -> None:
    issuer_data = bytes.fromhex("910A 1122334455667788 3030")

    response = build_response(purchase_1987(), response_code="00", extra={55: issuer_data})

    assert response.fields[55] == issuer_data


def test_extra_cannot_put_a_pin_block_into_a_response() -> None:
    with pytest.raises(EncodeError) as raised:
        build_response(purchase_1987(), response_code="00", extra={52: b"\x00" * 8})

    assert raised.value.field == "52"


def test_a_dialect_that_needs_the_pan_echoed_asks_for_it() -> None:
    response = build_response(purchase_1987(), response_code="00", echo=frozenset({2, 11}))

    assert set(response.fields) == {2, 11, 39}


def test_echo_may_never_name_track_data() -> None:
    with pytest.raises(EncodeError):
        build_response(purchase_1987(), response_code="00", echo=frozenset({11, 35}))


def test_reversal_response_is_0410_echoing_the_original_data() -> None:
    original = ORIGINAL_DATA_ELEMENTS
    request = with_mti(purchase_1987(), "0400", f90=original)

    response = build_response(request, response_code="00")

    assert response.mti == "0410"
    assert response.fields[90] == original


def test_1993_response_echoes_function_code_but_not_the_card_date_in_field_13() -> None:
    request = Message("1200", {3: "000000", 11: "000321", 13: "2201", 24: "200"})

    response = build_response(request, response_code="116")

    assert response.mti == "1210"
    assert response.fields == {3: "000000", 11: "000321", 24: "200", 39: "116"}


@pytest.mark.parametrize(
    ("request_mti", "expected"),
    [
        ("0100", "0110"),
        ("0200", "0210"),
        ("0220", "0230"),
        ("0400", "0410"),
        ("0421", "0430"),  # a repeat is answered like the original
        ("0500", "0510"),
        ("0800", "0810"),
        ("1200", "1210"),
        ("1804", "1814"),
    ],
)
def test_response_mti_is_the_request_mti_plus_ten(request_mti: str, expected: str) -> None:
    assert response_mti(request_mti) == expected


@pytest.mark.parametrize("mti", ["0210", "0430", "02", "02A0"])
def test_responses_and_malformed_mtis_have_no_response(mti: str) -> None:
    with pytest.raises(EncodeError):
        response_mti(mti)


@pytest.mark.parametrize("code", ["", "0", "0000", "0 ?"])
def test_malformed_response_code_is_refused(code: str) -> None:
    with pytest.raises(EncodeError):
        build_response(purchase_1987(), response_code=code)
