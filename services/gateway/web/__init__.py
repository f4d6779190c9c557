"""The web pages the gateway serves: the customer portal (`/portals/{portal}/…`), with its templates,
static files and translations. Pages call the same service operations as the JSON API; the gateway
still has no database.

| file | answers |
| --- | --- |
| `portal.py` | which portal, its theme and limits, and who is looking |
| `pages.py` | rendering in the portal's frame, redirects after POST, refusals as pages |
| `rendering.py` | Jinja2, the Content-Security-Policy, the language of a page |
| `i18n.py` | catalogues (Babel), the customer's language and time zone, dates and sizes |
| `words.py` | each error code in words a customer understands |
| `routes_*.py` | the pages: home, sign-in, conversations, knowledge base; the live-update stream |
| `widget/` | the chat widget: its SDK (`/widget/portico-chat.js`), its frame, its hand-over to a person |
"""

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"


def install_pages(app: FastAPI) -> None:
    """Mount `/static/` and the page routes (and the live-update stream) on the gateway's app."""
    from services.gateway.web import (routes_compose, routes_conversations, routes_events, routes_home, routes_kb,
                                      routes_login)

    from services.gateway.web.console import install_console
    from services.gateway.web.widget import install_widget

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    install_console(app)
    install_widget(app)
    # routes_compose before routes_conversations: `/conversations/new` is not a conversation id.
    for module in (routes_events, routes_login, routes_compose, routes_conversations, routes_kb, routes_home):
        app.include_router(module.router)
