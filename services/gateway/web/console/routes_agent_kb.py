"""The knowledge base in the agent workspace: `GET /agent/kb` (a portal's articles by category, search with
highlighted snippets and "did you mean", paging; a portal chooser when the organisation has several) and
`GET /agent/kb/{portal}/{slug}` (one article), internal articles included and marked as such.

Both call the operations the knowledge-base JSON API calls (`services/gateway/routes_kb.py`) with the staff
member as the reader (`Reader(kind="staff", role=...)`): which internal articles they see (under the
portal's "portal for agents", "internal KB" and "show only internal articles" switches) is the kb
service's answer. Article bodies are the kb service's sanitised HTML; snippets keep only their `<mark>`s
(`services.gateway.web.routes_kb.marked`).
"""

import asyncio
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from contracts import operations
from contracts.errors import ErrorCode, ServiceError
from contracts.kb import GetArticle, ListArticles, ListCategories, Reader
from contracts.roles import Permission
from contracts.rpc import ListPortals
from services.gateway.web.console.staff import Staff, require_staff, staff_page
from services.gateway.web.routes_kb import list_links, listed

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 10


def reader(staff: Staff) -> Reader:
    return Reader(kind="staff", org_id=staff.record.org_id, role=staff.record.role)


def kb_link(portal: str, **query: str | None) -> str:
    """`/agent/kb` for `portal` with the non-empty `query` values (category, search, paging)."""
    return "/agent/kb?" + urlencode({"portal": portal, **{k: v for k, v in query.items() if v}})


@router.get("/agent/kb", response_class=HTMLResponse)
async def knowledge_base(request: Request, portal: str = Query(default="", max_length=100),
                         q: str = Query(default="", max_length=200), category: str = Query(default="", max_length=100),
                         cursor: str | None = Query(default=None, max_length=200)) -> HTMLResponse:
    """A portal's articles the staff member may read (the first portal by name unless one is chosen)."""
    staff = await require_staff(request, Permission.read_internal_articles)
    rpc, q = request.app.state.rpc, q.strip()
    portals = (await rpc.call(operations.auth.list_portals, ListPortals(actor=staff.actor))).portals
    if not portals:
        raise ServiceError(ErrorCode.unknown_portal, "This organisation has no portal yet.")
    site = next((p for p in portals if p.slug == portal), portals[0])
    page, shelves = await asyncio.gather(
        rpc.call(operations.kb.list_articles, ListArticles(reader=reader(staff), portal=site.slug, q=q or None,
                                                           category=category or None, cursor=cursor,
                                                           limit=PAGE_SIZE)),
        rpc.call(operations.kb.list_categories, ListCategories(reader=reader(staff), portal=site.slug)))
    categories = {c.slug: c for c in shelves.categories}
    links = list_links(kb_link, site.slug, page, q=q, category=category, cursor=cursor)
    return staff_page(request, staff, "staff/agent_kb.html", section="kb", portals=portals, site=site, q=q,
                      category=categories.get(category), category_slug=category, categories=shelves.categories,
                      articles=[listed(a, categories) for a in page.articles], corrected=page.corrected_query,
                      links=links, kb_link=kb_link)


@router.get("/agent/kb/{portal}/{slug}", response_class=HTMLResponse)
async def article(request: Request, portal: str = Path(min_length=1, max_length=100),
                  slug: str = Path(min_length=1, max_length=200)) -> HTMLResponse:
    """One article; one the staff member may not read is missing to them, as one that does not exist (404)."""
    staff = await require_staff(request, Permission.read_internal_articles)
    rpc = request.app.state.rpc
    portals = (await rpc.call(operations.auth.list_portals, ListPortals(actor=staff.actor))).portals
    site = next((p for p in portals if p.slug == portal), None)
    if site is None:  # another organisation's portal is missing to this one's staff
        raise ServiceError(ErrorCode.not_found, "No such article.")
    found, shelves = await asyncio.gather(
        rpc.call(operations.kb.get_article, GetArticle(reader=reader(staff), portal=site.slug, slug=slug)),
        rpc.call(operations.kb.list_categories, ListCategories(reader=reader(staff), portal=site.slug)))
    shown = found.article
    categories = {c.slug: c for c in shelves.categories}
    return staff_page(request, staff, "staff/agent_kb_article.html", section="kb", site=site,
                      several=len(portals) > 1, article=shown, body=Markup(shown.body_html),
                      internal=shown.visibility == "internal", category=categories.get(shown.category or ""),
                      kb_link=kb_link)
