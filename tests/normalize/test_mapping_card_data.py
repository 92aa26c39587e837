"""normalize(): where the PAN comes from, and that card secrets never get in."""

from __future__ import annotations

import copy
import dataclasses
import pickle

import pytest

from posgw.protocols.normalize import CardNumber, normalize

from .examples import EXPIRY, PAN, PIN_BLOCK, TRACK1, TRACK2, purchase_1987

MASKED = "476173******0010"


def test_pan_comes_from_field_2_masked_first_six_last_four() -> None:
    tx = normalize(purchase_1987())

    assert tx.pan_masked == MASKED
    assert tx.card is not None
    assert tx.card.digits_for_tokenizing() == PAN


def test_pan_comes_from_track_2_when_field_2_is_absent() -> None:
    tx = normalize(purchase_1987(f2=None, f55=None))

    assert tx.card == CardNumber(PAN)


def test_pan_comes_from_packed_track_2_bytes() -> None:
    packed = bytes.fromhex(PAN + "D22122011143804400000F")

    tx = normalize(purchase_1987(f2=None, f35=packed, f55=None))

    assert tx.card == CardNumber(PAN)


def test_pan_comes_from_emv_5a_when_neither_field_2_nor_track_2_is_there() -> None:
    tx = normalize(purchase_1987(f2=None, f35=None))

    assert tx.card == CardNumber(PAN)


def test_pan_comes_from_emv_track_2_equivalent_as_a_last_resort() -> None:
    field_55 = bytes.fromhex("5713" + PAN + "D22122011143804400000F")

    tx = normalize(purchase_1987(f2=None, f35=None, f55=field_55))

    assert tx.card == CardNumber(PAN)


def test_no_card_data_means_no_card() -> None:
    tx = normalize(purchase_1987(f2=None, f35=None, f55=None))

    assert (tx.card, tx.pan_masked) == (None, None)


def test_repr_of_transaction_and_str_of_card_never_show_the_full_pan() -> None:
    tx = normalize(purchase_1987())

    assert PAN not in repr(tx)
    assert PAN not in str(tx.card)
    assert PAN not in repr(tx.card)
    assert PAN not in f"{tx.card}"
    assert MASKED in repr(tx)


def test_dataclass_helpers_do_not_copy_the_pan_out() -> None:
    tx = normalize(purchase_1987())

    assert PAN not in repr(dataclasses.asdict(tx))
    assert PAN not in repr(dataclasses.astuple(tx))
    assert copy.deepcopy(tx) == tx


def test_card_number_survives_pickling_unchanged() -> None:
    card = CardNumber(PAN)

    assert pickle.loads(pickle.dumps(card)) == card


def test_card_number_cannot_be_changed() -> None:
    card = CardNumber(PAN)

    with pytest.raises(AttributeError):
        card._digits = "4000000000000002"


def test_card_number_rejects_non_digits_without_quoting_them() -> None:
    with pytest.raises(ValueError) as raised:
        CardNumber("4761 7390 0101 0010")

    assert "4761" not in str(raised.value)


def test_track_pin_block_and_expiry_never_reach_any_transaction_field() -> None:
    message = purchase_1987(f45=TRACK1)

    tx = normalize(message)

    secrets = {TRACK2, TRACK1, EXPIRY, PIN_BLOCK.hex().upper(), "22122011143804400000"}
    for field in dataclasses.fields(tx):
        shown = repr(getattr(tx, field.name))
        assert not [secret for secret in secrets if secret in shown], field.name
    assert "5F24" not in tx.emv
    assert "5A" not in tx.emv


def test_emv_map_keeps_the_non_sensitive_tags_as_hex() -> None:
    tx = normalize(purchase_1987())

    assert tx.emv["9F26"] == "1A2B3C4D5E6F7081"
    assert tx.emv["9F02"] == "000000012345"
    assert set(tx.emv) == {"9F26", "9F27", "9F36", "95", "9F02", "5F2A"}
