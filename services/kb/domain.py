"""kb's rules, free of I/O: who sees which articles, Markdown to safe HTML, a safe subset of CSS, theme
colours that can be read (WCAG 2.1 AA contrast)."""

import html
import re
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

import nh3
import tinycss2
from markdown_it import MarkdownIt

from contracts import roles
from contracts.errors import ErrorCode, ServiceError
from contracts.kb import Reader

# Versions of the portal's base templates: the conversation views need themes made for version 3.
THEME_VERSION = 3
VIEWS_NEEDING = {"my_conversations": 3, "conversation_detail": 3, "home": 1, "article": 1}


def visible_to(reader: Reader, *, portal_org: str, portal_for_agents: bool, internal_kb: bool,
               show_only_internal: bool) -> frozenset[str]:
    """The visibilities a reader may see among published articles of a portal."""
    staff = reader.kind == "staff" and reader.org_id == portal_org and roles.can_read_internal_articles(reader.role)
    if not staff or not (portal_for_agents and internal_kb):
        return frozenset({"public"})
    return frozenset({"internal"}) if show_only_internal else frozenset({"public", "internal"})


def require_editor(role: str) -> None:
    if not roles.can_edit_articles(role):
        raise ServiceError(ErrorCode.forbidden, "Only admins and content managers edit the knowledge base.")


# -- Markdown ---------------------------------------------------------------------------------

ALLOWED_TAGS = {"a", "p", "br", "hr", "strong", "em", "del", "s", "code", "pre", "blockquote", "ul", "ol", "li",
                "h1", "h2", "h3", "h4", "h5", "h6", "table", "thead", "tbody", "tr", "th", "td", "img"}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "title"}, "th": {"align"}, "td": {"align"}}


@cache
def _markdown() -> MarkdownIt:
    # Raw HTML in the source is shown as text, never passed through; nh3 then cleans what is left.
    return MarkdownIt("commonmark", {"html": False, "linkify": False}).enable(["table", "strikethrough"])


@contextmanager
def reading(what: str, code: ErrorCode = ErrorCode.invalid_request) -> Iterator[None]:
    """Turns a parser's failure on client input (a ValueError from Python's 4,300-digit limit on integer
    strings, a RecursionError on deep nesting, ...) into `ServiceError(code)` naming `what`: bad input is
    the client's error (4xx with a code), never the service's."""
    try:
        yield
    except ServiceError:
        raise
    except Exception as exc:
        raise ServiceError(code, f"{what}: could not be read ({type(exc).__name__}); simplify it.") from exc


def render_markdown(source: str, what: str = "body", code: ErrorCode = ErrorCode.invalid_request) -> str:
    """Markdown to HTML that is safe to serve: no scripts, no event handlers, no `javascript:` links.
    Raises `ServiceError(code)` naming `what` when the parser fails on the source."""
    with reading(what, code):
        return nh3.clean(_markdown().render(source), tags=ALLOWED_TAGS, attributes=ALLOWED_ATTRIBUTES,
                         url_schemes={"http", "https", "mailto"}, link_rel="noopener noreferrer nofollow")


def plain_text(rendered_html: str) -> str:
    """The text of rendered HTML, for search."""
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", rendered_html))).strip()


def slugify(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug[:80] or "article"


# -- CSS ----------------------------------------------------------------------------------------

CSS_PROPERTIES = frozenset({
    "color", "background-color", "font-family", "font-size", "font-weight", "font-style", "line-height",
    "letter-spacing", "text-align", "text-decoration", "text-transform", "margin", "margin-top", "margin-right",
    "margin-bottom", "margin-left", "padding", "padding-top", "padding-right", "padding-bottom", "padding-left",
    "border", "border-color", "border-width", "border-style", "border-radius", "width", "max-width",
    "display", "gap", "opacity", "box-shadow"})
SELECTOR = re.compile(r"^[A-Za-z0-9_\-.#:>+~*,\s]+$")
FORBIDDEN_VALUE = re.compile(r"url\(|expression|javascript:|\\|@import|<|behavior|-moz-binding", re.IGNORECASE)
COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
SCOPE = ".portico-portal"


def sanitise_css(source: str) -> str:
    """Plain selectors and whitelisted properties only, scoped to the portal; anything else, and CSS the
    parser (tinycss2, CSS Syntax Level 3) fails on, is refused with `ServiceError(invalid_setting)`."""
    with reading("custom_css", ErrorCode.invalid_setting):
        return _sanitise_css(source)


def _sanitise_css(source: str) -> str:
    out = []
    for rule in tinycss2.parse_stylesheet(source, skip_comments=True, skip_whitespace=True):
        if rule.type == "error":
            raise ServiceError(ErrorCode.invalid_setting, f"custom_css: {rule.message}.")
        if rule.type != "qualified-rule":
            raise ServiceError(ErrorCode.invalid_setting, "custom_css: at-rules (@import, @font-face, ...) are not "
                                                          "allowed.")
        selector = tinycss2.serialize(rule.prelude).strip()
        if not SELECTOR.match(selector):
            raise ServiceError(ErrorCode.invalid_setting, f"custom_css: selector '{selector[:60]}' is not allowed.")
        declarations = []
        for item in tinycss2.parse_declaration_list(rule.content, skip_comments=True, skip_whitespace=True):
            if item.type != "declaration":
                raise ServiceError(ErrorCode.invalid_setting, "custom_css: only property declarations are allowed.")
            value = tinycss2.serialize(item.value).strip()
            if item.lower_name not in CSS_PROPERTIES:
                raise ServiceError(ErrorCode.invalid_setting, f"custom_css: property '{item.name}' is not allowed.")
            if FORBIDDEN_VALUE.search(value):
                raise ServiceError(ErrorCode.invalid_setting, f"custom_css: the value of '{item.name}' is not "
                                                              "allowed.")
            declarations.append(f"{item.lower_name}: {value}{' !important' if item.important else ''}")
        scoped = ", ".join(f"{SCOPE} {' '.join(part.split())}" for part in selector.split(","))
        out.append(f"{scoped} {{ {'; '.join(declarations)} }}")
    return "\n".join(out)


COLOUR_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")
MAX_COLOURS = 40


def check_colours(colours: dict[str, str]) -> None:
    """Each name a CSS-safe word and each value `#rrggbb`, matched whole (the page writes them into its
    `<style>` as `--<name>: <value>`, so nothing else may get through); else `ServiceError(invalid_setting)`."""
    if len(colours) > MAX_COLOURS:
        raise ServiceError(ErrorCode.invalid_setting, f"colours: at most {MAX_COLOURS} named colours.")
    for name, value in colours.items():
        if not COLOUR_NAME.fullmatch(name) or not COLOUR.fullmatch(value):
            raise ServiceError(ErrorCode.invalid_setting, f"colours.{name[:40]}: a name and a #rrggbb colour.")


# -- colour contrast (WCAG 2.1 AA, success criterion 1.4.3) -------------------------------------

# The colours the portal's stylesheet (services/gateway/web/static/portal.css) reads, with its defaults: a
# theme that leaves one out is shown with the default, so the contrast is checked against the default too.
# `on_primary` is the colour of words on the primary colour (buttons, the unread badge).
PORTAL_COLOURS = {"primary": "#2a5bd7", "on_primary": "#ffffff", "text": "#1f2328", "background": "#ffffff",
                  "muted": "#57606a", "surface": "#f6f8fa", "danger": "#b42318"}
# Where the stylesheet sets words of one colour on another: (words, behind them, what they are).
CONTRAST_PAIRS = (("text", "background", "text"), ("text", "surface", "text on panels"),
                  ("muted", "background", "secondary text"), ("danger", "background", "error messages"),
                  ("primary", "background", "links"), ("on_primary", "primary", "button labels"))
MIN_CONTRAST = 4.5  # normal-size text; https://www.w3.org/TR/WCAG21/#contrast-minimum


def relative_luminance(colour: str) -> float:
    """`#rrggbb` to its relative luminance, 0 (black) to 1 (white), as
    https://www.w3.org/TR/WCAG21/#dfn-relative-luminance defines it. (WCAG 2.1 writes the sRGB threshold as
    0.03928, sRGB itself 0.04045; no 8-bit channel value lies between the two.)"""
    def linear(channel: int) -> float:
        c = channel / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(int(colour[i:i + 2], 16)) for i in (1, 3, 5))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_ratio(first: str, second: str) -> float:
    """(L1 + 0.05) / (L2 + 0.05), the lighter colour's luminance over the darker's: 1 to 21."""
    light, dark = sorted((relative_luminance(first), relative_luminance(second)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def check_contrast(colours: dict[str, str], where: str = "colours") -> None:
    """Refuse, with `ServiceError(invalid_setting)` naming each pair, its ratio and the 4.5:1 it needs, a theme
    whose words would be hard to read: every pair of `CONTRAST_PAIRS`, the theme's colours over the defaults.
    A ratio is compared unrounded and shown cut to two decimals (never "4.50" for one just under): #777777 on
    white (4.478...) is refused as 4.47:1, #767676 (4.54:1) accepted."""
    shown = {**PORTAL_COLOURS, **{k: v.lower() for k, v in colours.items()}}
    failing = []
    for words, behind, what in CONTRAST_PAIRS:
        ratio = contrast_ratio(shown[words], shown[behind])
        if ratio < MIN_CONTRAST:
            failing.append(f"{words} {shown[words]} on {behind} {shown[behind]} ({what}) has a contrast ratio of "
                           f"{int(ratio * 100) / 100:.2f}:1")
    if failing:
        raise ServiceError(ErrorCode.invalid_setting, f"{where}: {'; '.join(failing)}. WCAG 2.1 AA needs at least "
                                                      f"{MIN_CONTRAST}:1 for text; choose colours further apart.")


def check_logo(url: str | None) -> None:
    # Browsers read `\` as `/`: "/\\evil.example" would be another site, as "//evil.example" is.
    if url and ("\\" in url or any(ord(c) < 33 for c in url)
                or not (url.startswith("https://") or (url.startswith("/") and not url.startswith("//")))):
        raise ServiceError(ErrorCode.invalid_setting, "logo_url: an https URL or a path on this site.")
