"""Languages: the gettext catalog for a BCP 47 tag, its text direction, dates in its words.

config (site.lang) ─► i18n ─► render, message; Babel lives here and nowhere else.
"""

from __future__ import annotations

import gettext
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any

from babel import Locale, UnknownLocaleError
from babel.dates import format_date as babel_format_date
from babel.support import Translations

DEFAULT_LANG = "en"
DOMAIN = "digest"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
# English dates stay "27 November 2025" (as before languages); others use their long form.
_DATE_PATTERNS = {"en": "d MMMM y"}


@cache
def locale_of(tag: str) -> Locale:
    """The Babel locale of a BCP 47 tag; English for a tag Babel does not know (words, dates)."""
    try:
        return Locale.parse(tag, sep="-")
    except (UnknownLocaleError, ValueError):
        return Locale.parse(DEFAULT_LANG)


def N_(message: str) -> str:
    """Marks a message for the catalog (pybabel extract) where it is made; translated where
    it is shown, in the language of the site that shows it."""
    return message


def text_direction(tag: str) -> str:
    """`rtl` for right-to-left languages (Arabic, Hebrew, Persian...), else `ltr`."""
    return "rtl" if locale_of(tag).character_order == "right-to-left" else "ltr"


@cache
def translations(tag: str) -> gettext.NullTranslations:
    """The message catalog for the language (falling back from pt_BR to pt, else English)."""
    return Translations.load(str(LOCALE_DIR), [str(locale_of(tag))], domain=DOMAIN)


def format_date(value: date | datetime, tag: str, tz: Any = None, fmt: str | None = None) -> str:
    """A date in the language's words: `27 November 2025`, `27. November 2025`.

    `fmt` is a Babel pattern (`d MMM`, `EEEE`), or a strftime one when it contains `%`.
    """
    when = value
    if tz is not None and isinstance(value, datetime) and value.tzinfo is not None:
        when = value.astimezone(tz)
    if fmt and "%" in fmt:
        return when.strftime(fmt)
    locale = locale_of(tag)
    pattern = fmt or _DATE_PATTERNS.get(locale.language, "long")
    return str(babel_format_date(when, pattern, locale=locale))
