"""The agent inbox: `GET /agent/` — the organisation's conversations, last changed first, with filters
(status, channel, portal, assignee: mine, unassigned or a staff member), search, paging, and each row's
unread and awaiting-answer markers; live, through the staff's event stream.

It calls the operations `GET /api/v1/agent/conversations`, `/api/v1/agent/portals` and
`/api/v1/agent/assignees` call (`services/gateway/routes_agent.py`); which conversations a role may see,
and what unread means, is the conversations service's answer. A filter value that is not one is ignored.
"""

import asyncio
from dataclasses import dataclass
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from contracts import operations
from contracts.conversations import AgentConversation, AgentInbox, Assignee, ListAssignees
from contracts.events import CHANNELS
from contracts.roles import Permission
from contracts.rpc import ListPortals
from services.gateway.web.console.staff import Staff, require_staff, staff_page
from services.gateway.web.pages import see_other
from services.gateway.web.routes_conversations import names

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 25
STATUSES = ("open", "closed", "all")
ASSIGNEE_OF = {"mine": "me", "unassigned": "none"}  # the page's words for the operation's `assignee`


def staff_name(member: Assignee) -> str:
    return member.display_name or member.email


def live_from(request: Request) -> int:
    """Where the page's live stream starts: the feed's position before anything the page shows is read."""
    request.state.live_from = request.app.state.live.position
    return request.state.live_from


@dataclass(frozen=True)
class Row:
    """A conversation as the inbox lists it."""

    conversation: AgentConversation
    assignee: str | None
    portal: str


def inbox_link(**query: str | None) -> str:
    """`/agent/` with the non-empty `query` values (filters, search, paging)."""
    kept = {k: v for k, v in query.items() if v}
    return "/agent/" + (f"?{urlencode(kept)}" if kept else "")


@router.get("/agent", include_in_schema=False)
async def agent_home() -> Response:
    return see_other("/agent/")


@router.get("/agent/", response_class=HTMLResponse)
async def inbox(request: Request, status: str = Query(default="open", max_length=20),
                channel: str = Query(default="", max_length=20), portal: str = Query(default="", max_length=100),
                assignee: str = Query(default="", max_length=40), q: str = Query(default="", max_length=200),
                customer: str = Query(default="", max_length=26),
                cursor: str | None = Query(default=None, max_length=200)) -> Response:
    """The inbox; `customer` (a customer's id, from a conversation page) shows that customer's only. Staff
    whose role works no conversations (content managers) land here after signing in: on to the
    knowledge base."""
    staff = await require_staff(request, Permission.read_internal_articles)  # any staff role
    if not staff.can(Permission.work_conversations):
        return see_other("/agent/kb")
    since = live_from(request)
    rpc = request.app.state.rpc
    portals, team = await asyncio.gather(rpc.call(operations.auth.list_portals, ListPortals(actor=staff.actor)),
                                         rpc.call(operations.conversations.list_assignees,
                                                  ListAssignees(actor=staff.actor)))
    members = {m.id: staff_name(m) for m in team.staff}
    portal_names = {p.slug: p.name for p in portals.portals}
    filters = {"status": status if status in STATUSES else "open", "channel": channel if channel in CHANNELS else "",
               "portal": portal if portal in portal_names else "",
               "assignee": assignee if assignee in ASSIGNEE_OF or assignee in members else "", "q": q.strip(),
               "customer": customer if customer.isalnum() else ""}
    page = await rpc.call(operations.conversations.agent_inbox, AgentInbox(
        actor=staff.actor, status=None if filters["status"] == "all" else filters["status"],
        channel=filters["channel"] or None, portal=filters["portal"] or None,
        assignee=ASSIGNEE_OF.get(filters["assignee"], filters["assignee"]) or None, q=filters["q"] or None,
        customer_id=filters["customer"] or None, cursor=cursor, limit=PAGE_SIZE))
    rows = [Row(c, members.get(c.assignee_id or "") if c.assignee_id else None, portal_names.get(c.portal, c.portal))
            for c in page.conversations]
    query = {k: v for k, v in filters.items() if v and not (k == "status" and v == "open")}
    return staff_page(
        request, staff, "staff/inbox.html", section="inbox", rows=rows, filters=filters, portals=portals.portals,
        members=team.staff, me=staff.user_id, filtered=bool(query), live_from=since, staff_name=staff_name,
        links={"next": inbox_link(**query, cursor=page.next_cursor) if page.next_cursor else None,
               "first": inbox_link(**query) if cursor else None, "reset": inbox_link()},
        **names(request))


__all__ = ["Staff", "router", "live_from", "staff_name"]
