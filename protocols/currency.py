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


def minor_unit_digits(currency: str) -> int:
    """The currency's exponent: 2 unless MINOR_UNIT_DIGITS says otherwise."""
    return MINOR_UNIT_DIGITS.get(currency.upper(), 2)


def parse_decimal_minor(text: str, currency: str, *, exact: bool = False) -> int:
    """Decimal text in major units to an integer in minor units: "125.50" USD
    is 12550, "125000" VND is 125000, "-1.5" EUR is -150.

    Plain digits, an optional leading "-" and one "." only: no exponent,
    thousands separator, "+" or blank (files are strict, people are not).
    With `exact`, the text must have exactly the currency's digits after the
    point ("125.00", never "125" or "125.0" for USD); without, fewer digits
    are padded and extra digits must be zeros ("1.500" EUR is 150, "1.505"
    is refused). ValueError says what is wrong.
    """
    digits = minor_unit_digits(currency)
    body = text[1:] if text.startswith("-") else text
    units, point, fraction = body.partition(".")
    if not _ascii_digits(units) or (point and not _ascii_digits(fraction)):
        raise ValueError(f"{text!r} is not a decimal amount")
    if exact and len(fraction) != digits:
        raise ValueError(f"{text!r}: {currency} amounts have exactly {digits} decimals")
    if len(fraction) > digits:
        if fraction[digits:].strip("0"):
            raise ValueError(f"{text!r} is finer than the {currency} minor unit")
        fraction = fraction[:digits]
    scale: int = 10**digits
    value = int(units) * scale + int(fraction.ljust(digits, "0") or "0")
    return -value if text.startswith("-") else value


def _ascii_digits(text: str) -> bool:
    return text.isascii() and text.isdigit()  # not "٣" or "²", which isdigit() accepts


def decimal_text(amount_minor: int, currency: str) -> str:
    """An integer in minor units as the plain decimal text files carry:
    12550 USD is "125.50", 125000 VND is "125000" (no grouping)."""
    digits = minor_unit_digits(currency)
    sign = "-" if amount_minor < 0 else ""
    if digits == 0:
        return f"{sign}{abs(amount_minor)}"
    units, minor = divmod(abs(amount_minor), 10**digits)
    return f"{sign}{units}.{minor:0{digits}d}"
