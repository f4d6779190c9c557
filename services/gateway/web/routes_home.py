"""`GET /portals/{portal}/`: the portal's start page."""

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from contracts import operations
from contracts.kb import ListArticles
from services.gateway.web.pages import page_portal, portal_page

router = APIRouter(include_in_schema=False)

Slug = Path(min_length=1, max_length=100)


@router.get("/portals/{portal}")
async def without_slash(portal: str = Slug) -> RedirectResponse:
    return RedirectResponse(f"/portals/{portal}/", status_code=308)


@router.get("/portals/{portal}/", response_class=HTMLResponse)
async def home(request: Request, portal: str = Slug) -> HTMLResponse:
    site, visitor = await page_portal(request, portal)
    page = await request.app.state.rpc.call(operations.kb.list_articles, ListArticles(
        reader=visitor.reader(), portal=site.slug, limit=6))
    return portal_page(request, site, visitor, "portal/home.html", view="home", section="home",
                       articles=page.articles)
