"""Reading the knowledge base: published articles a reader may see; a hidden one is a missing one."""

import base64
import binascii

from sqlmodel import Session, col, func, select

from contracts.errors import ErrorCode, ServiceError
from contracts.kb import (
    ArticlePage,
    ArticleReply,
    ArticleSummary,
    ArticleView,
    CategoryList,
    CategorySummary,
    GetArticle,
    ListArticles,
    ListCategories,
    Reader,
)
from services.kb import domain, search
from services.kb.indexing import indexer_of
from services.kb.models import Article, Category
from services.kb.portals import KnownPortal, portal
from services.runtime.service import Service

def _visible(reader: Reader, row: KnownPortal) -> frozenset[str]:
    return domain.visible_to(reader, portal_org=row.org_id, portal_for_agents=row.portal_for_agents,
                             internal_kb=row.internal_kb, show_only_internal=row.show_only_internal)


# The largest offset a cursor may hold: far past any listing, and well inside what databases take as an
# OFFSET (past 64 bits SQLite raises OverflowError and PostgreSQL "out of range").
MAX_OFFSET = 2**31 - 1


def _offset(cursor: str | None) -> int:
    """The offset a cursor from `_cursor` stands for; anything else is `ServiceError(invalid_request)`."""
    if not cursor:
        return 0
    try:
        offset = int(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode())
    except (ValueError, binascii.Error) as exc:
        raise ServiceError(ErrorCode.invalid_request, "cursor: not a cursor this API returned.") from exc
    if not 0 <= offset <= MAX_OFFSET:
        raise ServiceError(ErrorCode.invalid_request, "cursor: not a cursor this API returned.")
    return offset


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(str(offset).encode()).decode().rstrip("=")


def _categories(session: Session, portal: str) -> dict[str, str]:
    return dict(session.exec(select(Category.id, Category.slug).where(Category.portal == portal)).all())


def _summary(categories: dict[str, str], article: Article, snippet: str | None = None) -> ArticleSummary:
    return ArticleSummary(slug=article.slug, title=article.title, category=categories.get(article.category_id or ""),
                          visibility=article.visibility, locale=article.locale,  # type: ignore[arg-type]
                          updated_at=article.updated_at, snippet=snippet)


def _list(session: Session, request: ListArticles, row: KnownPortal) -> ArticlePage:
    """The portal's published articles the reader may see, newest first (no `q`)."""
    visible = _visible(request.reader, row)
    offset = _offset(request.cursor)
    categories = _categories(session, row.slug)
    statement = select(Article).where(Article.portal == row.slug, Article.status == "published",
                                      col(Article.visibility).in_(visible))
    if request.category:
        category_id = next((i for i, slug in categories.items() if slug == request.category), None)
        if category_id is None:
            return ArticlePage(articles=[], next_cursor=None)
        statement = statement.where(Article.category_id == category_id)
    rows = session.exec(statement.order_by(col(Article.updated_at).desc(), col(Article.id))
                        .offset(offset).limit(request.limit + 1)).all()
    page = [_summary(categories, a) for a in rows]
    more = len(page) > request.limit
    return ArticlePage(articles=page[:request.limit], next_cursor=_cursor(offset + request.limit) if more else None)


def _json_or_null(value: str | None) -> bytes:
    return b"null" if value is None else search.json_string(value).encode()


def page_json(hits: list[search.Hit], next_cursor: str | None, corrected_query: str | None) -> bytes:
    """The `ArticlePage` of these hits as pydantic writes it (the same bytes), written from each hit's summary
    JSON made when it was indexed: nothing the service built itself is validated again."""
    return b"".join((b'{"articles":[', b",".join([h.summary_json() for h in hits]), b'],"next_cursor":',
                     _json_or_null(next_cursor), b',"corrected_query":', _json_or_null(corrected_query), b"}"))


def _search(index: search.SearchIndex, request: ListArticles, row: KnownPortal) -> bytes:
    """The articles matching `request.q`, best first, from the search index alone: the reader's words, each
    unknown one corrected to the closest word of the articles the reader may see. Returns the `ArticlePage`
    as JSON (what `services.runtime.rpc.data_body` sends as it is)."""
    visible = _visible(request.reader, row)
    offset = _offset(request.cursor)
    terms, changed = search.correct(request.q or "", index.vocabulary(row.slug, visible))
    hits, more = index.search(portal=row.slug, visibilities=visible, terms=terms, category=request.category,
                              limit=request.limit, offset=offset)
    return page_json(hits, _cursor(offset + request.limit) if more else None, " ".join(terms) if changed else None)


async def list_articles(service: Service, request: ListArticles) -> ArticlePage | bytes:
    """The portal's published articles the reader may see, a page of `request.limit`: searched when
    `request.q` has words (the page already written as JSON bytes, `_search`), else listed (`ArticlePage`).
    Raises `unknown_portal` (404) or `kb_disabled` as `portal` does."""
    if not (request.q and request.q.strip()):
        return await service.read(_list, request, await portal(service, request.portal))
    # The portal from this replica's memory and the search from its in-memory index: no database read and no
    # worker thread (a query takes about a millisecond, shorter than a thread hop and its wake-ups).
    return _search(indexer_of(service).index, request, await portal(service, request.portal))


def _get(session: Session, request: GetArticle, row: KnownPortal) -> ArticleReply:
    article = session.exec(select(Article).where(Article.portal == row.slug, Article.slug == request.slug)).first()
    if article is None or article.status != "published" or article.visibility not in _visible(request.reader, row):
        raise ServiceError(ErrorCode.not_found, "No such article.")
    return ArticleReply(article=ArticleView(**_summary(_categories(session, row.slug), article).model_dump(),
                                            body_html=article.body_html))


async def get_article(service: Service, request: GetArticle) -> ArticleReply:
    return await service.read(_get, request, await portal(service, request.portal))


def _list_categories(session: Session, request: ListCategories, row: KnownPortal) -> CategoryList:
    """Only categories with an article the reader may see: a category's name never hints at a hidden one."""
    counts = session.exec(select(Article.category_id, func.count()).where(
        Article.portal == row.slug, Article.status == "published", col(Article.category_id).is_not(None),
        col(Article.visibility).in_(_visible(request.reader, row))).group_by(Article.category_id)).all()
    found = dict(counts)
    rows = session.exec(select(Category).where(Category.portal == row.slug, col(Category.id).in_(list(found)))).all()
    categories = [CategorySummary(slug=c.slug, name=c.name, articles=found[c.id]) for c in rows]
    return CategoryList(categories=sorted(categories, key=lambda c: (c.name.lower(), c.slug)))


async def list_categories(service: Service, request: ListCategories) -> CategoryList:
    """The categories holding a published article the reader may see, by name, with how many."""
    return await service.read(_list_categories, request, await portal(service, request.portal))
