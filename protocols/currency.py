"""ISO 4217 numeric currency codes (field 49, EMV 5F2A) to alphabetic codes.

A short table of the currencies a branch network is likely to see; a code
not in it is kept in its numeric form rather than guessed.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

ISO4217_ALPHA_BY_NUMERIC: Mapping[str, str] = MappingProxyType(
    {
        "036": "AUD",
        "124": "CAD",
        "156": "CNY",
        "203": "CZK",
        "208": "DKK",
        "344": "HKD",
        "348": "HUF",
        "356": "INR",
        "360": "IDR",
        "376": "ILS",
        "392": "JPY",
        "410": "KRW",
        "458": "MYR",
        "484": "MXN",
        "554": "NZD",
        "578": "NOK",
        "608": "PHP",
        "634": "QAR",
        "643": "RUB",
        "682": "SAR",
        "702": "SGD",
        "704": "VND",
        "710": "ZAR",
        "752": "SEK",
        "756": "CHF",
        "764": "THB",
        "784": "AED",
        "826": "GBP",
        "840": "USD",
        "901": "TWD",
        "946": "RON",
        "949": "TRY",
        "978": "EUR",
        "985": "PLN",
        "986": "BRL",
    }
)


def currency_alpha(code: str) -> str | None:
    """Alphabetic code for a numeric or alphabetic ISO 4217 code.

    "978" and "0978" (EMV's n4 form) give "EUR"; an unknown numeric code is
    returned as three digits; "eur" gives "EUR". None when `code` is neither.
    """
    if code.isascii() and code.isdigit() and len(code) in (3, 4):  # not "²", "٣"
        if len(code) == 4:
            if code[0] != "0":
                return None
            code = code[1:]
        return ISO4217_ALPHA_BY_NUMERIC.get(code, code)
    if code.isascii() and code.isalpha() and len(code) == 3:
        return code.upper()
    return None


#: ISO 4217 minor-unit digits (the currency exponent) where they are not 2.
MINOR_UNIT_DIGITS: Mapping[str, int] = MappingProxyType({
    **dict.fromkeys(("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF",
                     "UGX", "VND", "VUV", "XAF", "XOF", "XPF"), 0),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
})


def format_amount(amount_minor: int, currency: str) -> str:
    """An amount in minor units shown in major units: 12500 EUR -> "125.00",
    500 JPY -> "500". For people only: payloads keep the integer."""
    digits = MINOR_UNIT_DIGITS.get(currency.upper(), 2)
    if digits == 0:
        return f"{amount_minor:,}"
    units, minor = divmod(abs(amount_minor), 10 ** digits)
    sign = "-" if amount_minor < 0 else ""
    return f"{sign}{units:,}.{minor:0{digits}d}"
