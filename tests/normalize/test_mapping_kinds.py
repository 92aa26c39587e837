"""normalize(): what kind of transaction a message is, and how the card was read."""

from __future__ import annotations

from posgw.protocols.iso8583.message import Message
from posgw.protocols.normalize import EntryMode, ResponseCategory, TxKind, normalize

from .examples import ORIGINAL_DATA_ELEMENTS, PAN, purchase_1987, with_mti


def test_chip_purchase_with_pin_is_a_chip_purchase_with_pin_present() -> None:
    tx = normalize(purchase_1987())

    assert tx.kind is TxKind.PURCHASE
    assert tx.entry_mode is EntryMode.CHIP
    assert tx.pin_present is True
    assert tx.version == 1987
    assert tx.response is None  # a request carries no field 39


def test_contactless_purchase_without_pin_has_no_pin_present() -> None:
    tx = normalize(purchase_1987(f22="072", f52=None))

    assert tx.entry_mode is EntryMode.CONTACTLESS
    assert tx.pin_present is False


def test_contactless_magstripe_mode_counts_as_contactless() -> None:
    assert normalize(purchase_1987(f22="912")).entry_mode is EntryMode.CONTACTLESS


def test_manual_entry_is_manual() -> None:
    tx = normalize(purchase_1987(f22="012", f35=None, f55=None, f52=None))

    assert tx.entry_mode is EntryMode.MANUAL


def test_magstripe_fallback_after_chip_failure_is_fallback() -> None:
    assert normalize(purchase_1987(f22="801", f55=None)).entry_mode is EntryMode.FALLBACK


def test_full_track_read_is_magstripe() -> None:
    assert normalize(purchase_1987(f22="901", f55=None)).entry_mode is EntryMode.MAGSTRIPE


def test_entry_mode_comes_from_emv_9f39_when_field_22_is_absent() -> None:
    tx = normalize(purchase_1987(f22=None, f55=bytes.fromhex("9F390107")))

    assert tx.entry_mode is EntryMode.CONTACTLESS


def test_processing_code_20_is_a_refund() -> None:
    assert normalize(purchase_1987(f3="200000")).kind is TxKind.REFUND


def test_processing_code_02_is_a_void() -> None:
    assert normalize(purchase_1987(f3="020000")).kind is TxKind.VOID


def test_processing_code_31_is_a_balance_inquiry() -> None:
    tx = normalize(purchase_1987(f3="310000", f4=None))

    assert tx.kind is TxKind.BALANCE_INQUIRY
    assert tx.amount_minor is None


def test_authorization_class_purchase_is_a_preauth() -> None:
    assert normalize(with_mti(purchase_1987(), "0100", f25="06")).kind is TxKind.PREAUTH


def test_financial_advice_with_preauth_condition_is_a_completion() -> None:
    assert normalize(with_mti(purchase_1987(), "0220", f25="06")).kind is TxKind.COMPLETION


def test_reversal_0400_takes_original_stan_from_field_90() -> None:
    original = ORIGINAL_DATA_ELEMENTS
    reversal = with_mti(purchase_1987(), "0400", f11="000124", f90=original)

    tx = normalize(reversal)

    assert tx.kind is TxKind.REVERSAL
    assert (tx.original_mti, tx.original_stan) == ("0200", "000123")
    assert tx.original_data == original


def test_batch_settlement_0500_is_batch_settlement() -> None:
    message = Message("0500", {3: "920000", 11: "000200", 41: "T0101   ", 42: "M0001"})

    assert normalize(message).kind is TxKind.BATCH_SETTLEMENT


def test_network_management_001_is_sign_on() -> None:
    message = Message("0800", {11: "000001", 41: "T0101", 70: "001"})

    assert normalize(message).kind is TxKind.SIGN_ON


def test_network_management_301_is_echo() -> None:
    assert normalize(Message("0800", {11: "000002", 70: "301"})).kind is TxKind.ECHO


def test_network_management_without_a_known_code_is_unknown() -> None:
    assert normalize(Message("0800", {11: "000003"})).kind is TxKind.UNKNOWN


def test_1993_financial_request_reads_function_code_and_pos_data_code() -> None:
    message = Message(
        "1200",
        {
            2: PAN,
            3: "000000",
            4: "000000005000",
            11: "000321",
            12: "250317111530",  # 1993: local date and time
            13: "2201",  # 1993: card effective date, not a local date
            22: "A10101510001",  # position 7 '5': chip
            24: "200",  # original financial request
            49: "840",
        },
    )

    tx = normalize(message)

    assert (tx.kind, tx.version, tx.entry_mode) == (TxKind.PURCHASE, 1993, EntryMode.CHIP)
    assert (tx.local_time, tx.local_date, tx.function_code) == ("250317111530", None, "200")
    assert tx.currency == "USD"


def test_1993_response_with_action_code_116_is_insufficient_funds() -> None:
    message = Message("1210", {3: "000000", 4: "000000005000", 11: "000321", 24: "200", 39: "116"})

    tx = normalize(message)

    assert tx.response_code == "116"
    assert tx.response is ResponseCategory.INSUFFICIENT_FUNDS


def test_1993_function_code_202_is_a_completion() -> None:
    message = Message("1220", {3: "000000", 4: "000000005000", 11: "000322", 24: "202"})

    assert normalize(message).kind is TxKind.COMPLETION


def test_1993_network_management_831_is_echo() -> None:
    assert normalize(Message("1804", {11: "000004", 24: "831"})).kind is TxKind.ECHO


def test_1993_contactless_chip_in_pos_data_code_is_contactless() -> None:
    message = Message("1200", {3: "000000", 22: "A10101M10001"})

    assert normalize(message).entry_mode is EntryMode.CONTACTLESS
