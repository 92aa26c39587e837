"""Whatever a Message holds, normalize() returns a Transaction or raises an Iso8583Error."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from posgw.protocols.iso8583.errors import Iso8583Error
from posgw.protocols.iso8583.message import FieldValue, Message
from posgw.protocols.normalize import Transaction, normalize

from .examples import PAN, purchase_1987

_FIELDS_NORMALIZE_READS = [2, 3, 4, 7, 11, 12, 13, 22, 24, 25, 35, 37, 38, 39, 41, 42, 49, 52, 55]
_FIELDS_NORMALIZE_READS += [56, 70, 90]

mtis = st.text(alphabet="0123456789", min_size=4, max_size=4) | st.text(max_size=6)
field_values: st.SearchStrategy[FieldValue] = (
    st.text(alphabet="0123456789=D ", max_size=40) | st.text(max_size=40) | st.binary(max_size=40)
)
field_maps = st.dictionaries(
    st.sampled_from(_FIELDS_NORMALIZE_READS) | st.integers(1, 128), field_values, max_size=12
)


def _normalize_or_iso_error(message: Message) -> None:
    try:
        result = normalize(message)
    except Iso8583Error as error:
        assert PAN not in str(error)
        return
    assert isinstance(result, Transaction)
    assert PAN not in repr(result)


@given(mtis, field_maps)
def test_random_messages_raise_only_iso8583_errors(mti: str, fields: dict[int, FieldValue]) -> None:
    _normalize_or_iso_error(Message(mti, fields))


@given(field_maps, st.sampled_from(["0100", "0200", "0400", "0500", "0800", "1200", "1804"]))
def test_random_changes_to_a_real_purchase_raise_only_iso8583_errors(
    changes: dict[int, FieldValue], mti: str
) -> None:
    message = purchase_1987()
    message.mti = mti
    message.fields.update(changes)

    _normalize_or_iso_error(message)
