"""Languages of the pages: gettext catalogues (Babel), the customer's locale and time zone.

English is the source language; every other language is a `translations/<locale>/LC_MESSAGES/messages.po`
catalogue, compiled in memory at start-up (no build step, no binary files in the repository).
`make translations` extracts new strings and updates the catalogues (see the README).
"""

import re
from datetime import datetime
from functools import cache, lru_cache
from io import BytesIO
from pathlib import Path
from urllib.parse import unquote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale, UnknownLocaleError
from babel.dates import format_datetime, format_skeleton, format_time
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
UTC_NAMES = frozenset({"UTC", "Etc/UTC"})
ZONE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_+-]{0,30}(/[A-Za-z0-9_+-]{1,30}){0,2}")  # `America/Argentina/Salta`
NAMED_FORMATS = ("short", "medium", "long", "full")  # CLDR's; none shows fractions of a second
LANGUAGE_KEY = "portico.language"  # where a request keeps the language chosen for it


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
    `Accept-Language` (RFC 9110 §12.5.4, quality values honoured), else English. Chosen once a request:
    a page asks for every message it translates."""
    chosen = request.scope.get(LANGUAGE_KEY)
    if chosen is None:
        chosen = request.scope[LANGUAGE_KEY] = _language_of(request)
    return chosen


def _language_of(request: Request) -> str:
    for chosen in (request.query_params.get("lang"), request.cookies.get(LANGUAGE_COOKIE)):
        if chosen in LANGUAGES:
            return chosen
    wanted = []
    for part in request.headers.get("accept-language", "").split(",")[:20]:
        tag, *params = part.strip().split(";")
        quality = 1.0
        for param in params:
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0  # an unreadable weight counts as none
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
    name = unquote(request.cookies.get(TIME_ZONE_COOKIE, ""))  # the script writes it URL-encoded
    if not ZONE_NAME.fullmatch(name):  # an IANA name only: never a path, nor anything read from elsewhere
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # unknown, or a file of the database that is no zone
        return UTC


@lru_cache(maxsize=8192)
def _named_datetime(value: datetime, format: str, zone: ZoneInfo, locale: Locale) -> str:
    """A date and time in one of CLDR's formats, kept: Babel takes ~10 µs for one, and a list page shows the
    same instants on every view (the text depends only on the instant, to the second, zone and locale).

    `medium` is the date as the locale abbreviates it and the time without seconds (`1. Dez. 2026, 14:05`,
    `Dec 1, 2026, 2:05 PM`): seconds and numeric months only make a customer read twice. In UTC, which is
    also what a page shows before it knows the browser's time zone (and with JavaScript off), the time
    says "UTC", so that nobody takes it for their own time."""
    if format == "medium":
        date = format_skeleton("yMMMd", value, tzinfo=zone, locale=locale)
        time = format_time(value, "short", tzinfo=zone, locale=locale)
        text = str(locale.datetime_formats["medium"]).replace("'", "").format(time, date)
    else:
        text = format_datetime(value, format=format, tzinfo=zone, locale=locale)
    return f"{text} UTC" if zone.key in UTC_NAMES and format in ("short", "medium") else text


class Formats:
    """Dates, times and sizes the way the customer's locale writes them, in their time zone."""

    def __init__(self, language: str, zone: ZoneInfo) -> None:
        try:
            self.locale = Locale.parse(language)
        except (UnknownLocaleError, ValueError):
            self.locale = Locale.parse(DEFAULT_LANGUAGE)
        self.zone = zone

    def datetime(self, value: datetime, format: str = "medium") -> str:
        if format in NAMED_FORMATS and isinstance(value, datetime):
            return _named_datetime(value.replace(microsecond=0), format, self.zone, self.locale)
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
