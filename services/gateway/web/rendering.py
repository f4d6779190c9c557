"""Rendering a page: Jinja2 with autoescape, the customer's language, and the security headers.

Every page carries a Content-Security-Policy without `unsafe-inline` scripts: scripts come only from
`/static/`, the theme's sanitised CSS is the one inline `<style>`, allowed by a per-response nonce
(CSP Level 3, `nonce-source`).
"""

import hashlib
import secrets
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from babel.support import NullTranslations
from jinja2 import Environment, FileSystemLoader, pass_context, select_autoescape
from jinja2.runtime import Context
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse

from services.gateway.web import i18n

TEMPLATES = Path(__file__).parent / "templates"
KEPT_MESSAGES = 4096  # plain messages kept per language: every `_("...")` of the templates, with room to spare


@cache
def environment(language: str) -> Environment:
    """One Jinja2 environment per language (gettext installed, `{% trans %}` and `_()` available). Templates
    are compiled once per process (`auto_reload=False`: a changed template shows after a restart)."""
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True),
                      extensions=["jinja2.ext.i18n"], trim_blocks=True, lstrip_blocks=True, auto_reload=False)
    translations = i18n.translations(language)
    env.install_gettext_translations(translations, newstyle=True)  # type: ignore[attr-defined]
    # `_()` calls the gettext below directly (the extension's `_` looks `gettext` up again on every call).
    env.globals["gettext"] = env.globals["_"] = kept_gettext(translations)
    return env


def kept_gettext(translations: NullTranslations) -> Callable[..., str]:
    """Jinja's newstyle gettext (the message is a %-format even without placeholders; escaped under
    autoescape), keeping the result of each message without placeholders: a list page says "Last activity"
    once a row, and translating, marking safe and formatting it each time was a fifth of its rendering."""
    plain: dict[str, Markup] = {}

    @pass_context
    def gettext(context: Context, message: str, **variables: Any) -> str:
        autoescape = context.eval_ctx.autoescape
        if not variables and autoescape:
            kept = plain.get(message)
            if kept is None:
                kept = Markup(translations.gettext(message)) % {}
                if len(plain) < KEPT_MESSAGES:
                    plain[message] = kept
            return kept
        text = translations.gettext(message)
        return (Markup(text) if autoescape else text) % variables

    return gettext


def content_security_policy(nonce: str) -> str:
    return "; ".join((
        "default-src 'self'", "script-src 'self'", f"style-src 'self' 'nonce-{nonce}'",
        "img-src 'self' https: data:", "connect-src 'self'", "font-src 'self'", "object-src 'none'",
        "base-uri 'none'", "form-action 'self'", "frame-ancestors 'none'"))


def render(request: Request, template: str, context: dict[str, Any], *, status: int = 200,
           headers: dict[str, str] | None = None) -> HTMLResponse:
    """`template` rendered in the request's language; `context` is added to what every page has
    (`request`, `lang`, `fmt`, `csp_nonce`, `languages`, `static`). Answers with the security headers
    and, when the language switch was used, remembers the language in a cookie for a year."""
    language = i18n.choose_language(request)
    nonce = secrets.token_urlsafe(16)
    html = environment(language).get_template(template).render(
        request=request, lang=language, fmt=i18n.Formats(language, i18n.choose_time_zone(request)),
        csp_nonce=nonce, languages=i18n.LANGUAGES, static=static_url, **context)
    response = HTMLResponse(html, status_code=status, headers={
        "Content-Security-Policy": content_security_policy(nonce), "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin", "Cache-Control": "private, no-store", "Content-Language": language,
        "Vary": "Cookie, Accept-Language", **(headers or {})})
    if request.query_params.get("lang") in i18n.LANGUAGES:
        response.set_cookie(i18n.LANGUAGE_COOKIE, language, max_age=365 * 86400, samesite="lax", path="/")
    return response


@cache
def static_url(name: str) -> str:
    """`/static/<name>?v=<digest of the file>`: a changed file gets a new address, so no browser keeps an
    old copy (computed once per process; a deploy restarts it)."""
    path = Path(__file__).parent / "static" / name
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12] if path.is_file() else "0"
    return f"/static/{name}?v={digest}"


def gettext(request: Request, message: str, **values: object) -> str:
    """`message` translated into the request's language, `%(name)s` placeholders filled from `values`."""
    text = i18n.translations(i18n.choose_language(request)).gettext(message)
    return text % values if values else text
