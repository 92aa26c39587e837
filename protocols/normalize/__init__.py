"""Normalization: decoded ISO 8583 messages to `Transaction`, and responses back."""

from posgw.protocols.normalize.errors import NormalizeError
from posgw.protocols.normalize.mapping import normalize
from posgw.protocols.normalize.response import (
    ECHO_FIELDS_1987,
    ECHO_FIELDS_1993,
    NEVER_IN_RESPONSE,
    build_response,
    response_mti,
)
from posgw.protocols.normalize.response_codes import (
    ACTION_CODES_1993,
    RESPONSE_CODES_1987,
    category_for,
    response_code_for,
)
from posgw.protocols.normalize.transaction import (
    CardNumber,
    EntryMode,
    ResponseCategory,
    Transaction,
    TxKind,
)

__all__ = [
    "ACTION_CODES_1993",
    "ECHO_FIELDS_1987",
    "ECHO_FIELDS_1993",
    "NEVER_IN_RESPONSE",
    "RESPONSE_CODES_1987",
    "CardNumber",
    "EntryMode",
    "NormalizeError",
    "ResponseCategory",
    "Transaction",
    "TxKind",
    "build_response",
    "category_for",
    "normalize",
    "response_code_for",
    "response_mti",
]
