"""The knowledge base in the browser: `GET /portals/{portal}/kb` (articles by category, search with
highlighted snippets and "did you mean", paging) and `GET /portals/{portal}/kb/{slug}` (one article).

Both call the operations the JSON API calls (`services/gateway/routes_kb.py`) with the visitor as the
reader: which articles a customer, an anonymous visitor or staff may see (internal articles under the
portal's "portal for agents" and "show only internal articles" switches) is the kb service's answer.
Both pages use the theme of the `article` view.

What is rendered as markup, and why it is safe:
- an article's `body_html` is the kb service's Markdown rendering, cleaned by nh3 with an allow-list of
  tags, attributes and URL schemes (`services/kb/domain.py` `render_markdown`; the XSS corpus of
  `tests/integration/test_kb_content.py` and `tests/web/test_portal_kb.py` hold it to that);
- a search snippet is trusted for nothing but its `<mark>`s: `marked()` escapes the text again.
Behind both, the pages' Content-Security-Policy runs no inline script and no event handler attribute.
"""

import asyncio
import html
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup, escape

from contracts import operations
from contracts.errors import ErrorCode, ServiceError
from contracts.kb import ArticlePage, ArticleSummary, CategorySummary, GetArticle, ListArticles, ListCategories
from services.gateway.web.pages import page_portal, portal_page

router = APIRouter(include_in_schema=False)

Slug = Path(min_length=1, max_length=100)
PAGE_SIZE = 10
MARK = re.compile(r"(</?mark>)")


def marked(snippet: str | None) -> Markup | None:
    """A search snippet as markup: its text unescaped and escaped again (so text the service left unescaped is
    still text), its `<mark>`s kept only as balanced pairs, and nothing else."""
    if not snippet:
        return None
    out, inside = [], False
    for part in MARK.split(snippet):
        if part in ("<mark>", "</mark>"):
            if (part == "<mark>") != inside:
                out.append(part)
                inside = not inside
        else:
            out.append(str(escape(html.unescape(part))))
    if inside:
        out.append("</mark>")
    return Markup("".join(out))


@dataclass(frozen=True)
class Listed:
    """An article as the list shows it."""

    slug: str
    title: str
    category: CategorySummary | None
    internal: bool
    updated_at: datetime
    snippet: Markup | None


def listed(article: ArticleSummary, categories: dict[str, CategorySummary]) -> Listed:
    return Listed(slug=article.slug, title=article.title, category=categories.get(article.category or ""),
                  internal=article.visibility == "internal", updated_at=article.updated_at,
                  snippet=marked(article.snippet))


def kb_link(portal: str, **query: str | None) -> str:
    """`/portals/{portal}/kb` with the non-empty `query` values, for the category, paging and correction links."""
    kept = {k: v for k, v in query.items() if v}
    return f"/portals/{portal}/kb" + (f"?{urlencode(kept)}" if kept else "")


def list_links(link: Callable[..., str], portal: str, page: ArticlePage, *, q: str, category: str,
               cursor: str | None) -> dict[str, str | None]:
    """The list page's links, made by `link` (a `kb_link`): `next` page, `first` page (when paged on),
    `corrected` (the search as corrected), `all` (the search in every category); None where there is none."""
    return {"next": link(portal, q=q, category=category, cursor=page.next_cursor) if page.next_cursor else None,
            "first": link(portal, q=q, category=category) if cursor else None,
            "corrected": link(portal, q=page.corrected_query, category=category) if page.corrected_query else None,
            "all": link(portal, q=q)}


@router.get("/portals/{portal}/kb", response_class=HTMLResponse)
async def knowledge_base(request: Request, portal: str = Slug, q: str = Query(default="", max_length=200),
                         category: str = Query(default="", max_length=100),
                         cursor: str | None = Query(default=None, max_length=200)) -> HTMLResponse:
    """The articles the visitor may see, newest first, or those matching `q`; `category` narrows either."""
    site, visitor = await page_portal(request, portal)
    rpc, reader, q = request.app.state.rpc, visitor.reader(), q.strip()
    page, shelves = await asyncio.gather(
        rpc.call(operations.kb.list_articles, ListArticles(reader=reader, portal=site.slug, q=q or None,
                                                           category=category or None, cursor=cursor,
                                                           limit=PAGE_SIZE)),
        rpc.call(operations.kb.list_categories, ListCategories(reader=reader, portal=site.slug)))
    categories = {c.slug: c for c in shelves.categories}
    links = list_links(kb_link, site.slug, page, q=q, category=category, cursor=cursor)
    return portal_page(request, site, visitor, "portal/kb.html", view="article", section="kb", q=q,
                       category=categories.get(category), category_slug=category, categories=shelves.categories,
                       articles=[listed(a, categories) for a in page.articles], corrected=page.corrected_query,
                       links=links, kb_link=kb_link)


@router.get("/portals/{portal}/kb/{slug}", response_class=HTMLResponse)
async def article(request: Request, portal: str = Slug, slug: str = Path(min_length=1, max_length=200)) -> HTMLResponse:
    """One article; one the visitor may not see is missing to them, as one that does not exist (404)."""
    site, visitor = await page_portal(request, portal)
    rpc, reader = request.app.state.rpc, visitor.reader()
    found, shelves = await asyncio.gather(
        rpc.call(operations.kb.get_article, GetArticle(reader=reader, portal=site.slug, slug=slug)),
        rpc.call(operations.kb.list_categories, ListCategories(reader=reader, portal=site.slug)),
        return_exceptions=True)
    if isinstance(found, ServiceError) and found.code is ErrorCode.not_found:
        return portal_page(request, site, visitor, "portal/kb_missing.html", view="article", section="kb",
                           status=404)
    for outcome in (found, shelves):
        if isinstance(outcome, BaseException):
            raise outcome
    shown = found.article
    categories = {c.slug: c for c in shelves.categories}
    return portal_page(request, site, visitor, "portal/kb_article.html", view="article", section="kb",
                       article=shown, body=Markup(shown.body_html), internal=shown.visibility == "internal",
                       category=categories.get(shown.category or ""), kb_link=kb_link)
