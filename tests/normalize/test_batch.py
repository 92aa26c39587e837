"""Batch totals in fields 74-77, 80, 86-89: round trips and bad input."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from posgw.protocols.iso8583.message import Message
from posgw.protocols.normalize.batch import BatchTotals

counts = st.integers(0, 10**10 - 1)
amounts = st.integers(0, 10**16 - 1)
totals = st.builds(BatchTotals, credits=counts, credits_amount=amounts,
                   credit_reversals=counts, credit_reversals_amount=amounts, debits=counts,
                   debits_amount=amounts, debit_reversals=counts,
                   debit_reversals_amount=amounts, inquiries=counts)


@given(totals)
def test_totals_survive_the_fields_of_a_0500(batch: BatchTotals) -> None:
    message = Message("0500", {3: "920000", **batch.fields()})
    assert BatchTotals.from_fields(message) == batch
    assert batch.fields()[76] == f"{batch.debits:010d}"
    assert batch.fields()[88] == f"{batch.debits_amount:016d}"


def test_a_field_that_is_not_digits_is_refused_when_strict() -> None:
    message = Message("0500", {**BatchTotals(debits=1).fields(), 88: "12AB"})
    assert BatchTotals.from_fields(message, strict=True) is None
    assert BatchTotals.from_fields(message) == BatchTotals(debits=1)


def test_only_money_totals_are_compared() -> None:
    terminal, ledger = BatchTotals(debits=2, inquiries=5), BatchTotals(debits=1)
    assert terminal.money_differences(ledger) == {"debits": {"terminal": 2, "ledger": 1}}
