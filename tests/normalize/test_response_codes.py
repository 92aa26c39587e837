"""Response and action codes to categories, and back."""

from __future__ import annotations

import pytest

from posgw.protocols.normalize import (
    ACTION_CODES_1993,
    RESPONSE_CODES_1987,
    ResponseCategory,
    category_for,
    response_code_for,
)

C = ResponseCategory


@pytest.mark.parametrize(
    ("code", "category"),
    [
        ("00", C.APPROVED), ("000", C.APPROVED),
        ("10", C.PARTIAL_APPROVAL), ("002", C.PARTIAL_APPROVAL),
        ("05", C.DO_NOT_HONOR), ("100", C.DO_NOT_HONOR),
        ("51", C.INSUFFICIENT_FUNDS), ("116", C.INSUFFICIENT_FUNDS),
        ("55", C.INCORRECT_PIN), ("117", C.INCORRECT_PIN),
        ("75", C.PIN_TRIES_EXCEEDED), ("38", C.PIN_TRIES_EXCEEDED), ("106", C.PIN_TRIES_EXCEEDED),
        ("61", C.EXCEEDS_AMOUNT_LIMIT), ("121", C.EXCEEDS_AMOUNT_LIMIT),
        ("65", C.EXCEEDS_FREQUENCY_LIMIT), ("123", C.EXCEEDS_FREQUENCY_LIMIT),
        ("59", C.SUSPECTED_FRAUD), ("34", C.SUSPECTED_FRAUD), ("102", C.SUSPECTED_FRAUD),
        ("54", C.EXPIRED_CARD), ("101", C.EXPIRED_CARD),
        ("14", C.INVALID_CARD), ("111", C.INVALID_CARD),
        ("12", C.INVALID_TRANSACTION), ("902", C.INVALID_TRANSACTION),
        ("13", C.INVALID_AMOUNT), ("110", C.INVALID_AMOUNT),
        ("30", C.FORMAT_ERROR), ("904", C.FORMAT_ERROR),
        ("94", C.DUPLICATE_TRANSMISSION), ("913", C.DUPLICATE_TRANSMISSION),
        ("91", C.ISSUER_UNAVAILABLE), ("907", C.ISSUER_UNAVAILABLE), ("908", C.ISSUER_UNAVAILABLE),
        ("96", C.SYSTEM_ERROR), ("909", C.SYSTEM_ERROR),
        ("95", C.RECONCILE_ERROR), ("915", C.RECONCILE_ERROR),
        ("A0", C.MAC_ERROR), ("a0", C.MAC_ERROR),
        ("04", C.PICKUP), ("07", C.PICKUP), ("41", C.PICKUP), ("43", C.PICKUP), ("200", C.PICKUP),
        ("208", C.PICKUP),
    ],
)  # fmt: skip
def test_code_maps_to_its_category(code: str, category: ResponseCategory) -> None:
    assert category_for(code) is category


def test_unlisted_1993_codes_fall_back_on_the_standard_ranges() -> None:
    assert category_for("199") is C.DECLINED
    assert category_for("299") is C.PICKUP
    assert category_for("099") is C.UNKNOWN  # an unknown code is never taken as approval


def test_unknown_codes_are_unknown() -> None:
    assert category_for("Z9") is C.UNKNOWN
    assert category_for("") is C.UNKNOWN
    assert category_for("1234") is C.UNKNOWN


@pytest.mark.parametrize(
    ("version", "table"), [(1987, RESPONSE_CODES_1987), (1993, ACTION_CODES_1993)]
)
def test_every_table_entry_round_trips_through_response_code_for(
    version: int, table: dict[str, ResponseCategory]
) -> None:
    for code, category in table.items():
        sent = response_code_for(category, version)
        if category is C.DECLINED:
            # A generic decline is sent as "do not honour", the code terminals know.
            assert category_for(sent) is C.DO_NOT_HONOR, code
        else:
            assert category_for(sent) is category, code


@pytest.mark.parametrize("category", list(ResponseCategory))
def test_every_category_has_a_code_in_each_version(category: ResponseCategory) -> None:
    assert len(response_code_for(category, 1987)) == 2
    assert len(response_code_for(category, 1993)) == 3
    assert response_code_for(category, 2003) == response_code_for(category, 1993)


def test_unknown_category_is_answered_as_system_error() -> None:
    assert response_code_for(C.UNKNOWN, 1987) == "96"


def test_unsupported_version_is_refused() -> None:
    with pytest.raises(ValueError, match="version"):
        response_code_for(C.APPROVED, 1999)


def test_only_full_and_partial_approvals_are_approvals() -> None:
    assert {category for category in C if category.is_approval} == {
        C.APPROVED,
        C.PARTIAL_APPROVAL,
    }
