"""Rendering a page: Jinja2 with autoescape, the customer's language, and the security headers.

Every page carries a Content-Security-Policy without `unsafe-inline` scripts: scripts come only from
`/static/`, the theme's sanitised CSS is the one inline `<style>`, allowed by a per-response nonce
(CSP Level 3, `nonce-source`).
"""

import secrets
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from services.gateway.web import i18n

TEMPLATES = Path(__file__).parent / "templates"
STATIC_VERSION = "1"  # bump to make browsers fetch changed static files


@cache
def environment(language: str) -> Environment:
    """One Jinja2 environment per language (gettext installed, `{% trans %}` and `_()` available)."""
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True),
                      extensions=["jinja2.ext.i18n"], trim_blocks=True, lstrip_blocks=True, auto_reload=False)
    env.install_gettext_translations(i18n.translations(language), newstyle=True)  # type: ignore[attr-defined]
    return env


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


def static_url(name: str) -> str:
    return f"/static/{name}?v={STATIC_VERSION}"


def gettext(request: Request, message: str, **values: object) -> str:
    """`message` translated into the request's language, `%(name)s` placeholders filled from `values`."""
    text = i18n.translations(i18n.choose_language(request)).gettext(message)
    return text % values if values else text
