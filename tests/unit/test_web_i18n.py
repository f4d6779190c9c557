"""The pages' languages: the German catalogue is complete and current, its placeholders match the English,
no message is built in a way the catalogues cannot hold; the language, time zone and date formats chosen
for a request; refusals whose English detail is said again in German."""

import ast
import re
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_keywords, parse_mapping_cfg
from babel.messages.pofile import read_po
from jinja2 import Environment, nodes
from starlette.requests import Request

from contracts.errors import ErrorCode, ServiceError
from services.gateway.web import i18n, words

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "services" / "gateway" / "web"
POT = WEB / "translations" / "messages.pot"
GERMAN = WEB / "translations" / "de" / "LC_MESSAGES" / "messages.po"
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")
TRANSLATING = {"_", "gettext", "ngettext"}


def catalogue(path: Path):  # type: ignore[no-untyped-def]
    with path.open("rb") as source:
        return read_po(source, locale="de" if path == GERMAN else None)


def ids(messages) -> set:  # type: ignore[no-untyped-def]
    return {message.id for message in messages if message.id}


def extracted() -> set:
    """What `make translations` extracts today, with the Makefile's own keywords and babel.cfg."""
    recipe = (ROOT / "Makefile").read_text().split("translations: $(STAMP)", 1)[1].split("\n\n", 1)[0]
    keywords = dict(DEFAULT_KEYWORDS)
    keywords.update(parse_keywords(re.findall(r"-k (\S+)", recipe)))
    assert "pybabel extract -F $(WEB)/babel.cfg" in recipe
    with (WEB / "babel.cfg").open() as config:
        method_map, options_map = parse_mapping_cfg(config)
    found = extract_from_dir(str(ROOT), method_map, options_map, keywords=keywords)
    return {message for _file, _line, message, _comments, _context in found}


def test_the_catalogues_hold_every_string_of_the_pages_and_nothing_else():
    today = extracted()
    assert len(today) > 300  # the extraction found the templates and the Python at all
    stale = ids(catalogue(POT))
    assert today - stale == set(), "new strings: run `make translations` and translate them"
    assert stale - today == set(), "strings no page uses any more: run `make translations`"
    assert ids(catalogue(GERMAN)) == stale


def test_every_german_entry_is_translated_and_none_is_fuzzy():
    german = catalogue(GERMAN)
    assert german.plural_forms == "nplurals=2; plural=(n != 1);"
    untranslated = [m.id for m in german if m.id and not (all(m.string) if isinstance(m.id, tuple) else m.string)]
    assert untranslated == []
    assert [m.id for m in german if m.id and m.fuzzy] == []
    assert list(german.obsolete) == []


def test_german_keeps_every_placeholder_and_formats_cleanly():
    for message in catalogue(GERMAN):
        if not message.id:
            continue
        sources = message.id if isinstance(message.id, tuple) else (message.id,)
        targets = message.string if isinstance(message.string, tuple) else (message.string,)
        english = [set(PLACEHOLDER.findall(source)) for source in sources]
        for target in targets:
            names = set(PLACEHOLDER.findall(target))
            if len(english) == 1:
                assert names == english[0], f"{message.id!r} → {target!r}"
            else:  # a plural form may leave out the number ("Eine Datei …"), never anything else
                assert english[0] & english[1] <= names <= english[0] | english[1], f"{message.id!r} → {target!r}"
            # Every message is %-formatted when shown (newstyle gettext): a stray "%" would fail the page.
            target % {name: 1 for name in english[0] | english[-1] | {"num"}}


def test_no_message_is_built_from_pieces_the_catalogue_cannot_hold():
    """An f-string, a concatenation or a %-format inside `_()` / `gettext()` is extracted as nothing (or as
    a string no translator sees); the values go in as `%(name)s` placeholders instead."""
    built = []
    for path in WEB.rglob("*.py"):
        for call in ast.walk(ast.parse(path.read_text())):
            if isinstance(call, ast.Call) and getattr(call.func, "id", getattr(call.func, "attr", "")) in TRANSLATING:
                built += [f"{path.name}:{call.lineno}" for arg in call.args if isinstance(arg, (ast.JoinedStr, ast.BinOp))]
    environment = Environment(extensions=["jinja2.ext.i18n"])
    for path in (WEB / "templates").rglob("*.html"):
        for call in environment.parse(path.read_text()).find_all(nodes.Call):
            if isinstance(call.node, nodes.Name) and call.node.name in TRANSLATING:
                texts = call.args[:2] if call.node.name == "ngettext" else call.args[:1]  # not the count
                built += [f"{path.name}:{call.lineno}" for arg in texts
                          if isinstance(arg, (nodes.Concat, nodes.Add, nodes.Mod, nodes.Filter))]
    assert built == []


def request(headers: dict[str, str] | None = None, cookies: str = "", query: str = "") -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    if cookies:
        raw.append((b"cookie", cookies.encode()))
    return Request({"type": "http", "method": "GET", "path": "/", "query_string": query.encode(), "headers": raw})


@pytest.mark.parametrize(("header", "language"), [
    ("de-DE,de;q=0.9,en;q=0.8", "de"),
    ("en-GB,en;q=0.9,de;q=0.8", "en"),
    ("fr-FR,fr;q=0.9,de;q=0.7,en;q=0.5", "de"),   # French first: Portico has none, German is next
    ("en;q=0.2, de;q=0.9", "de"),                   # the weights decide, not the order
    ("de;q=0, en;q=0.1", "en"),                     # q=0: "not German"
    ("de_AT", "de"),
    ("ja, zh-CN", "en"),                            # nothing Portico has: English
    ("de;level=1;q=0.4, en;q=0.5", "en"),
    ("de;q=oops, en;q=0.1", "en"),
    ("", "en"),
])
def test_accept_language_with_quality_values(header: str, language: str):
    assert i18n.choose_language(request({"Accept-Language": header})) == language


def test_the_switch_wins_over_the_cookie_which_wins_over_the_browser():
    browser = {"Accept-Language": "de-DE"}
    assert i18n.choose_language(request(browser, query="lang=en")) == "en"
    assert i18n.choose_language(request(browser, cookies="portico_lang=en")) == "en"
    assert i18n.choose_language(request({"Accept-Language": "en"}, cookies="portico_lang=de")) == "de"
    assert i18n.choose_language(request(browser, cookies="portico_lang=xx", query="lang=fr")) == "de"


@pytest.mark.parametrize(("cookie", "zone"), [
    ("portico_tz=Europe%2FBerlin", "Europe/Berlin"),         # as portal.js writes it (encodeURIComponent)
    ("portico_tz=Europe/Berlin", "Europe/Berlin"),
    ("portico_tz=America%2FArgentina%2FBuenos_Aires", "America/Argentina/Buenos_Aires"),
    ("portico_tz=Etc%2FGMT%2B5", "Etc/GMT+5"),
    ("portico_tz=Mars%2FOlympus", "UTC"),
    ("portico_tz=..%2F..%2Fetc%2Fpasswd", "UTC"),
    ("portico_tz=%2Fetc%2Flocaltime", "UTC"),
    ("portico_tz=zone.tab", "UTC"),
    ("portico_tz=Europe", "UTC"),
    ("portico_tz=%ZZ", "UTC"),
    ("portico_tz=" + "A" * 200, "UTC"),
    ("", "UTC"),
])
def test_the_time_zone_cookie(cookie: str, zone: str):
    assert i18n.choose_time_zone(request(cookies=cookie)).key == zone


def test_dates_in_the_locale_and_time_zone_and_utc_said_out_loud():
    instant = datetime(2026, 12, 1, 13, 5, 59, tzinfo=UTC)
    berlin, tokyo = ZoneInfo("Europe/Berlin"), ZoneInfo("Asia/Tokyo")
    assert i18n.Formats("de", berlin).datetime(instant) == "1. Dez. 2026, 14:05"
    assert i18n.Formats("en", berlin).datetime(instant) == "Dec 1, 2026, 2:05\u202fPM"
    assert i18n.Formats("de", tokyo).datetime(instant) == "1. Dez. 2026, 22:05"
    assert i18n.Formats("de", berlin).datetime(instant, "short") == "01.12.26, 14:05"
    # No time zone known (JavaScript off, or the first page): the time says it is UTC.
    assert i18n.Formats("de", i18n.UTC).datetime(instant) == "1. Dez. 2026, 13:05 UTC"
    assert i18n.Formats("en", i18n.UTC).datetime(instant, "short") == "12/1/26, 1:05\u202fPM UTC"
    assert i18n.Formats("de", berlin).size(3 * 1024 * 1024 + 512 * 1024) == "3,5 MB"
    assert i18n.Formats("de", berlin).number(10241) == "10.241"


def refusal(language: str, code: ErrorCode, message: str, retry_after: int | None = None) -> str:
    asked = request({"Accept-Language": language})
    return words.say(asked, ServiceError(code, message, retry_after=retry_after))


def test_refusals_in_german_keep_their_detail_in_german():
    too_long = "The message has 10,241 characters; at most 10,240 are allowed."
    assert refusal("en", ErrorCode.message_too_long, too_long) == "Your message is too long. " + too_long
    assert refusal("de", ErrorCode.message_too_long, too_long) == \
        "Ihre Nachricht ist zu lang. Die Nachricht hat 10.241 Zeichen; erlaubt sind höchstens 10.240."
    assert refusal("de", ErrorCode.too_many_attachments, "7 files attached; at most 6 are allowed.") == \
        "Es sind zu viele Dateien angehängt. Es sind 7 Dateien angehängt; erlaubt sind höchstens 6."
    assert refusal("de", ErrorCode.attachment_too_large, "scan.png is 3,145,729 bytes; at most 3,145,728 are "
                   "allowed.").endswith("scan.png ist 3.145.729 B groß; erlaubt sind höchstens 3.145.728 B.")
    assert refusal("de", ErrorCode.attachment_malformed, '"bericht.pdf" is a corrupt PDF.') == \
        "Eine Datei ist beschädigt oder konnte nicht gelesen werden. Datei: bericht.pdf"
    assert refusal("de", ErrorCode.attachment_type_not_allowed, "x.exe: this type is not allowed.").endswith(
        "Datei: x.exe")
    # A detail of a shape not known here is left out rather than shown in English.
    assert refusal("de", ErrorCode.attachment_malformed, "Something else entirely") == \
        "Eine Datei ist beschädigt oder konnte nicht gelesen werden."


def test_waits_in_german_with_plural_forms():
    assert refusal("de", ErrorCode.rate_limited, "slow down", retry_after=1).endswith("in 1 Sekunde erneut.")
    assert refusal("de", ErrorCode.rate_limited, "slow down", retry_after=61).endswith("in 2 Minuten erneut.")
    assert refusal("de", ErrorCode.rate_limited, "slow down", retry_after=60).endswith("in 1 Minute erneut.")
    assert refusal("en", ErrorCode.rate_limited, "slow down", retry_after=30).endswith("Try again in 30 seconds.")


def test_every_error_code_has_words():
    """A code without words would show the service's English message on a page."""
    assert [code for code in ErrorCode if code not in words.WORDS and code is not ErrorCode.invalid_setting] == []

