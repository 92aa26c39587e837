"""The console's languages: English (the msgids), Vietnamese, Simplified
Chinese. Catalogues are the .po files under locale/, read and compiled when
the console starts (babel's read_po), so no binary .mo is kept in the tree.

Amounts are integers in minor units; shown per their currency's exponent
(VND has none: 125000 VND is "₫125,000", 1250 EUR minor is "€12.50").
"""

from __future__ import annotations

import gettext
import io
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from functools import cache
from pathlib import Path

from babel import Locale
from babel.core import UnknownLocaleError
from babel.dates import format_datetime
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency, get_currency_precision
from babel.support import Translations

LOCALE_DIR = Path(__file__).parent / "locale"
#: The account setting's values, and the locale each stands for.
LANGUAGES = {"en": "en", "vi": "vi", "zh_Hans": "zh_Hans_CN"}
LANGUAGE_NAMES = {"en": "English", "vi": "Tiếng Việt", "zh_Hans": "简体中文"}
DEFAULT_LANGUAGE = "en"


@dataclass(frozen=True, slots=True)
class Language:
    """One request's language: its translations and number/date formats."""

    code: str
    translations: gettext.NullTranslations

    @property
    def locale(self) -> Locale:
        return _locale(self.code)

    def gettext(self, message: str) -> str:
        return self.translations.gettext(message)

    def money(self, amount_minor: int, currency: str) -> str:
        try:
            exponent = get_currency_precision(currency)
        except (KeyError, ValueError):
            return f"{amount_minor} {currency} (minor units)"
        amount = Decimal(amount_minor).scaleb(-exponent)  # exact: no float money
        return format_currency(amount, currency, locale=self.locale)

    def moment(self, value: datetime) -> str:
        """A UTC moment in this language's medium format (SQLite hands
        timezone-aware columns back naive; they were written in UTC)."""
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        return format_datetime(aware, "medium", tzinfo=UTC, locale=self.locale) + " UTC"


@cache
def _locale(code: str) -> Locale:
    """Parsed once per language: a results page formats 200 amounts with it."""
    return Locale.parse(LANGUAGES[code])


@cache
def language(code: str) -> Language:
    if code not in LANGUAGES:
        code = DEFAULT_LANGUAGE
    return Language(code, _translations(code))


def _translations(code: str) -> gettext.NullTranslations:
    po = LOCALE_DIR / code / "LC_MESSAGES" / "messages.po"
    if not po.is_file():
        return gettext.NullTranslations()  # English: the msgids themselves
    with po.open("rb") as source:
        catalog = read_po(source, locale=code)
    return _compiled(catalog)


def _compiled(catalog: Catalog) -> Translations:
    buffer = io.BytesIO()
    write_mo(buffer, catalog)  # compiled in memory: the tree keeps only the .po
    buffer.seek(0)
    return Translations(fp=buffer)


def choose(account_language: str, accept_language: str) -> Language:
    """The account's setting when it has one, else the browser's first
    language we ship (Accept-Language, by its q weights), else English."""
    if account_language in LANGUAGES:
        return language(account_language)
    for tag in _by_weight(accept_language):
        code = _shipped(tag)
        if code:
            return language(code)
    return language(DEFAULT_LANGUAGE)


def _by_weight(header: str) -> list[str]:
    weighted: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        weight = 1.0
        if params.strip().startswith("q="):
            try:
                weight = float(params.strip()[2:])
            except ValueError:
                weight = 0.0
        if tag:
            weighted.append((-weight, index, tag.strip()))
    return [tag for _, _, tag in sorted(weighted)]


def _shipped(tag: str) -> str | None:
    try:
        parsed = Locale.parse(tag.replace("-", "_"))
    except (ValueError, UnknownLocaleError):
        return None
    if parsed.language == "zh":
        # Simplified unless the browser asks for Traditional (Taiwan, Hong Kong, Macau).
        traditional = parsed.script == "Hant" or parsed.territory in ("TW", "HK", "MO")
        return None if traditional else "zh_Hans"
    return parsed.language if parsed.language in ("en", "vi") else None
