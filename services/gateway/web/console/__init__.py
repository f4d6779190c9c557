"""The staff console: the agent workspace (`/agent/…`) and the admin console (`/admin/…`), on the same
shape as the customer portal (server-rendered, works without JavaScript, templates under
`templates/staff/`). Pages call the same operations as the agent and admin JSON APIs.

| file | answers |
| --- | --- |
| `staff.py` | who is signed in, what their role opens, the console's frame and refusals |
| `routes_login.py` | the staff sign-in and sign-out |
| `routes_inbox.py`, `routes_agent_conversation.py`, `routes_agent_actions.py`, `routes_agent_kb.py` | the agent workspace: inbox, a conversation and the actions on it, the knowledge base with internal articles |
| `routes_agent_events.py` | the agent workspace's live-update stream (`/api/v1/agent/events`) |
| `routes_admin_articles.py`, `routes_admin_theme.py` | articles (Markdown editor, preview, publish, revisions) and the theme per view (admins and content managers) |
| `routes_admin_operations.py` | operations: services' status and backlog, failed and bounced notifications, dead-lettered events (admins) |
| `routes_*.py` | the inbox, a conversation, the knowledge base, the admin pages |
"""

from fastapi import FastAPI


def install_console(app: FastAPI) -> None:
    """The console's page routes on the gateway's app."""
    from services.gateway.web.console import routes_login
    from services.gateway.web.console import (routes_agent_actions, routes_agent_conversation, routes_agent_events,
                                              routes_agent_kb, routes_inbox)
    from services.gateway.web.console import routes_admin_articles, routes_admin_operations, routes_admin_theme
    from services.gateway.web.console import routes_admin_access, routes_admin_secrets, routes_admin_settings
    from services.gateway.live_staff import StaffFeed

    # The staff's live stream is a second audience of the gateway's one feed (services.gateway.live).
    app.state.staff_live = StaffFeed(app.state.live)
    for module in (routes_login, routes_agent_events, routes_inbox, routes_agent_conversation, routes_agent_actions,
                   routes_agent_kb, routes_admin_articles, routes_admin_theme, routes_admin_operations,
                   routes_admin_settings, routes_admin_secrets, routes_admin_access):
        app.include_router(module.router)
