"""The card-number scanner itself: it finds what it must, and not what is
no card number (masked PANs, merchant ids, RRNs, times, amounts)."""

from __future__ import annotations

import pytest

from posgw.simulator import cards
from tests.web.card_numbers import assert_no_card_number, findings_in

POOL_PAN = "4895370000000017"


@pytest.mark.parametrize("text", [
    f"<td>{cards.VISA_OK}</td>",  # a simulator card, known without being named
    f"<td>{POOL_PAN}</td>",  # a card the test names
    "card 4761 7300 0000 0010 typed", "card 4761-7300-0000-0010 typed",
    "a card nobody knew 5500000000000004.",
    f"x{POOL_PAN}y",  # glued to letters: still a known one
    f"track2 {POOL_PAN}=3012201",
    POOL_PAN.encode().hex(),
])
def test_finds_a_card_number(text: str) -> None:
    found = findings_in("page", text.encode(), [POOL_PAN])
    assert found and all(str(finding).startswith("page") for finding in found)


@pytest.mark.parametrize("text", [
    "476173******0010", "M00000000000001", "RRN 634100000042",
    "2026-12-07 19:36:16,283 INFO", "2026-12-07T19:36:16.283169Z", "₫10,000,000",
    "ev-gw-demo-1-1234567", "a1b2c3d4e5f6a7b8c9d0e1f2",
    # an event id whose last two groups came out all digits (it happened):
    '<a href="/tx/9ebcec42-5651-40f4-8901-234567890123">',
])
def test_finds_nothing_in_what_is_no_card_number(text: str) -> None:
    assert findings_in("page", text.encode(), [POOL_PAN]) == []


def test_a_failure_names_the_last_4_digits_only() -> None:
    with pytest.raises(AssertionError) as failed:
        assert_no_card_number({"audit.csv": f"x,{POOL_PAN},y".encode()}, [POOL_PAN])
    assert "0017" in str(failed.value) and POOL_PAN not in str(failed.value)


def test_a_binary_file_is_searched_for_the_known_cards_only() -> None:
    blob = b"\x00" + b"5500000000000004" + b"\x01"
    assert_no_card_number({"page": b"<p>ok</p>"}, binary={"center.db": blob})
    with pytest.raises(AssertionError):
        assert_no_card_number({"page": b"<p>ok</p>"}, [POOL_PAN],
                              binary={"center.db": POOL_PAN.encode()})
