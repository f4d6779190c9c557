"""The widget's panel, `GET /widget/frame?portal=<slug>&host=<origin of the embedding page>[&locale=de]`:
the page inside the SDK's `<iframe>`, on Portico's origin, styled by the portal's theme.

Who may show it: its `Content-Security-Policy` says `frame-ancestors 'self' <the portal's origin>
<widget_origins>`; any other site gets a blank frame from the browser. `host` must be one of those
origins (else 403, and a page that says so): the frame then exchanges messages with that origin only
(`data-host`, read by `static/frame.js`). What the panel says comes from the catalogues, in `locale`
when given (else the browser's language), and the refusals' words from `words.WORDS`.
"""

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from contracts.errors import ServiceError
from services.gateway.web import i18n
from services.gateway.web.portal import load_portal
from services.gateway.web.rendering import gettext, render
from services.gateway.web.widget.origins import allowed_hosts, frame_ancestors, host_of, portal_info
from services.gateway.web.widget.routes_sdk import asset_url
from services.gateway.web.words import WORDS, say

router = APIRouter(tags=["chat widget"])

NOBODY = "frame-ancestors 'none'"
# In this order: storage, API and stream; the panel's pieces; the assistant; the chat and the page's requests.
FRAME_SCRIPTS = ("frame_api.js", "frame_panel.js", "frame_assistant.js", "frame.js")


def _language(request: Request, locale: str | None) -> None:
    """`locale` (`de`, `de-CH`, `en_GB`) chooses the panel's language when Portico has it."""
    if not locale:
        return
    base = locale.replace("_", "-").split("-")[0].lower()
    if base in i18n.LANGUAGES:
        request.scope[i18n.LANGUAGE_KEY] = base


def _framed(response: HTMLResponse, ancestors: str) -> HTMLResponse:
    policy = response.headers["Content-Security-Policy"]
    response.headers["Content-Security-Policy"] = policy.replace(NOBODY, f"frame-ancestors {ancestors}")
    return response


def _refused(request: Request, message: str, status: int, ancestors: str) -> HTMLResponse:
    response = render(request, "widget/refused.html", {"message": message, "css": asset_url("frame.css")},
                      status=status)
    return _framed(response, ancestors)


@router.get("/widget/frame", response_class=HTMLResponse, include_in_schema=False)
async def frame(request: Request, portal: str = Query(min_length=1, max_length=100),
                host: str = Query(default="", max_length=300),
                locale: str | None = Query(default=None, max_length=35)) -> HTMLResponse:
    _language(request, locale)
    try:
        info = await portal_info(request, portal)
    except ServiceError as error:  # no such portal, or auth away for a moment
        return _refused(request, say(request, error), error.status, "'self'")
    ancestors = frame_ancestors(request, info)
    origin = host_of(host)
    if origin is None or origin not in allowed_hosts(request, info):
        return _refused(request, gettext(request, "This site may not show this chat."), 403, ancestors)
    try:
        site = await load_portal(request, portal)
    except ServiceError as error:
        return _refused(request, say(request, error), error.status, ancestors)
    theme = site.view("home")
    words = {code.value: gettext(request, text) for code, text in WORDS.items()}
    response = render(request, "widget/frame.html", {
        "portal": site, "theme": theme, "host": origin, "words": words,
        "email_access": "email" in site.sign_in_methods, "anonymous": "anonymous" in site.sign_in_methods,
        "hand_over": site.features.my_conversations_enabled,
        "css": asset_url("frame.css"), "scripts": [asset_url(name) for name in FRAME_SCRIPTS]})
    return _framed(response, ancestors)
