"""Languages of the pages: gettext catalogues (Babel), the customer's locale and time zone.

English is the source language; every other language is a `translations/<locale>/LC_MESSAGES/messages.po`
catalogue, compiled in memory at start-up (no build step, no binary files in the repository).
`make translations` extracts new strings and updates the catalogues (see the README).
"""

from datetime import datetime
from functools import cache
from io import BytesIO
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale, UnknownLocaleError
from babel.dates import format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import NullTranslations, Translations
from starlette.requests import Request

TRANSLATIONS = Path(__file__).parent / "translations"
LANGUAGES = {"en": "English", "de": "Deutsch"}
DEFAULT_LANGUAGE = "en"
LANGUAGE_COOKIE = "portico_lang"
TIME_ZONE_COOKIE = "portico_tz"
UTC = ZoneInfo("UTC")


@cache
def translations(language: str) -> NullTranslations:
    """The compiled catalogue of `language` (one of `LANGUAGES`); English needs none."""
    po = TRANSLATIONS / language / "LC_MESSAGES" / "messages.po"
    if language == DEFAULT_LANGUAGE or not po.exists():
        return NullTranslations()
    with po.open("rb") as source:
        catalog = read_po(source, locale=language)
    compiled = BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled)


def choose_language(request: Request) -> str:
    """`?lang=` (the language switch), else the `portico_lang` cookie, else the best match of
    `Accept-Language` (RFC 9110 §12.5.4, quality values honoured), else English."""
    for chosen in (request.query_params.get("lang"), request.cookies.get(LANGUAGE_COOKIE)):
        if chosen in LANGUAGES:
            return chosen
    wanted = []
    for part in request.headers.get("accept-language", "").split(",")[:20]:
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        if tag and quality > 0:
            wanted.append((quality, tag.strip().replace("_", "-")))
    wanted.sort(key=lambda item: -item[0])
    for _, tag in wanted:
        base = tag.split("-")[0].lower()
        if base in LANGUAGES:
            return base
    return DEFAULT_LANGUAGE


def choose_time_zone(request: Request) -> ZoneInfo:
    """The browser's IANA time zone, which the page's script stores in the `portico_tz` cookie; UTC
    until then (and with JavaScript off)."""
    name = request.cookies.get(TIME_ZONE_COOKIE, "")
    if not name or len(name) > 64 or ".." in name:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


class Formats:
    """Dates, times and sizes the way the customer's locale writes them, in their time zone."""

    def __init__(self, language: str, zone: ZoneInfo) -> None:
        try:
            self.locale = Locale.parse(language)
        except (UnknownLocaleError, ValueError):
            self.locale = Locale.parse(DEFAULT_LANGUAGE)
        self.zone = zone

    def datetime(self, value: datetime, format: str = "medium") -> str:
        return format_datetime(value, format=format, tzinfo=self.zone, locale=self.locale)

    def size(self, size: int) -> str:
        """Bytes as KB or MB (1 KB = 1,024 bytes, as the portal's limits are stated)."""
        if size < 1024:
            return f"{format_decimal(size, locale=self.locale)} B"
        if size < 1024 * 1024:
            return f"{format_decimal(round(size / 1024, 1), locale=self.locale)} KB"
        return f"{format_decimal(round(size / 1024 / 1024, 1), locale=self.locale)} MB"

    def number(self, value: int) -> str:
        return format_decimal(value, locale=self.locale)
