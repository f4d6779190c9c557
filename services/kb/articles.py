"""Writing articles (admins and content managers): create, edit, publish, unpublish, delete, revisions."""


from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select, update

from contracts.envelope import new_id
from contracts.errors import ErrorCode, ServiceError
from contracts.events import ArticlePublished, ArticleUnpublished
from contracts.kb import (
    AdminArticle,
    AdminArticleList,
    AdminArticleReply,
    AdminListArticles,
    ArticleAction,
    ArticleInput,
    ArticlePreview,
    CreateArticle,
    Deleted,
    PreviewArticle,
    Revision,
    RevisionList,
    UpdateArticle,
)
from services.kb import domain
from services.kb.indexing import indexer_of
from services.kb.models import Article, ArticleRevision, Category, KbPortal
from services.kb.portals import admin_portal
from services.runtime.outbox import record_event
from services.runtime.service import Service
from services.runtime.clock import now

T = TypeVar("T")



def category_slug(session: Session, category_id: str | None) -> str | None:
    if category_id is None:
        return None
    category = session.get(Category, category_id)
    return category.slug if category else None


def admin_view(session: Session, article: Article) -> AdminArticle:
    return AdminArticle(
        slug=article.slug, title=article.title, category=category_slug(session, article.category_id),
        visibility=article.visibility, locale=article.locale, updated_at=article.updated_at,  # type: ignore[arg-type]
        body_html=article.body_html, status=article.status, version=article.version,  # type: ignore[arg-type]
        body=article.body, published_at=article.published_at)


def _category(session: Session, portal: str, slug: str | None) -> str | None:
    if not slug:
        return None
    slug = domain.slugify(slug)
    found = session.exec(select(Category).where(Category.portal == portal, Category.slug == slug)).first()
    if found is None:
        found = Category(id=new_id(), portal=portal, slug=slug, name=slug.replace("-", " ").capitalize())
        session.add(found)
        session.flush()
    return found.id


def _apply(session: Session, article: Article, changes: ArticleInput, author: str) -> None:
    values = changes.model_dump(exclude_none=True)
    if "title" in values:
        if not values["title"].strip():
            raise ServiceError(ErrorCode.invalid_request, "title: must not be empty.")
        article.title = " ".join(values["title"].split())
    if "body" in values:
        article.body = values["body"]
        article.body_html = domain.render_markdown(article.body)
        article.body_text = domain.plain_text(article.body_html)
    if "visibility" in values:
        article.visibility = values["visibility"]
    if "locale" in values:
        article.locale = values["locale"]
    if "category" in values:
        article.category_id = _category(session, article.portal, values["category"])
    article.version += 1
    article.updated_at = now()
    session.add(article)
    session.add(ArticleRevision(id=new_id(), article_id=article.id, version=article.version, title=article.title,
                                body=article.body, visibility=article.visibility, author=author,
                                created_at=article.updated_at))


def _content_changed(session: Session, portal: str) -> None:
    session.exec(update(KbPortal).where(KbPortal.slug == portal)  # type: ignore[call-overload]
                 .values(content_version=KbPortal.content_version + 1))


SEARCH_CHANGED = "kb_search_changed"


def _search_changed(session: Session, article: Article) -> None:
    """Note the article for the search index refresh that follows the commit (`_write`)."""
    session.info.setdefault(SEARCH_CHANGED, set()).add(article.id)


async def _write(service: Service, write: Callable[[Session], T]) -> T:
    """`write` in one transaction; then this replica's search index takes in the articles it published or
    withdrew, before the answer goes out (the others do on the events)."""
    changed: set[str] = set()

    def run(session: Session) -> T:
        session.info[SEARCH_CHANGED] = changed
        return write(session)

    result = await service.transaction(run)
    if changed:
        await indexer_of(service).refresh(changed)
    return result


def _published(session: Session, org_id: str, article: Article) -> None:
    _search_changed(session, article)
    record_event(session, ArticlePublished(
        article_id=article.id, portal=article.portal, slug=article.slug, title=article.title,
        visibility=article.visibility, locale=article.locale, revision=article.version),  # type: ignore[arg-type]
        org_id=org_id, aggregate_id=article.id, aggregate_version=article.version)
    _content_changed(session, article.portal)


def _withdrawn(session: Session, org_id: str, article: Article, reason: str, aggregate_version: int) -> None:
    """A published article stops being readable: out of the search, `ArticleUnpublished`."""
    _search_changed(session, article)
    record_event(session, ArticleUnpublished(article_id=article.id, portal=article.portal, slug=article.slug,
                                             reason=reason),  # type: ignore[arg-type]
                 org_id=org_id, aggregate_id=article.id, aggregate_version=aggregate_version)
    _content_changed(session, article.portal)


def _article(session: Session, portal: str, slug: str) -> Article:
    article = session.exec(select(Article).where(Article.portal == portal, Article.slug == slug)).first()
    if article is None:
        raise ServiceError(ErrorCode.not_found, "No such article.")
    return article


async def create(service: Service, request: CreateArticle) -> AdminArticleReply:
    portal = await admin_portal(service, request.actor, request.portal)
    if not (request.article.title or "").strip() or request.article.body is None:
        raise ServiceError(ErrorCode.invalid_request, "title and body are required.")

    def write(session: Session) -> AdminArticleReply:
        at = now()
        base = request.slug or domain.slugify(request.article.title or "")
        slug, n = base, 1
        while session.exec(select(Article.id).where(Article.portal == portal.slug, Article.slug == slug)).first():
            if request.slug:
                raise ServiceError(ErrorCode.conflict, f"An article '{slug}' exists already.")
            n += 1
            slug = f"{base}-{n}"
        article = Article(id=new_id(), portal=portal.slug, slug=slug, title="", body="", body_html="", body_text="",
                          visibility="public", status="draft", locale="en", version=0, created_at=at, updated_at=at)
        _apply(session, article, request.article, request.actor.principal)
        if request.published:
            article.status, article.published_at = "published", at
            _published(session, portal.org_id, article)
        try:
            session.flush()
        except IntegrityError as exc:
            raise ServiceError(ErrorCode.conflict, f"An article '{slug}' exists already.") from exc
        return AdminArticleReply(article=admin_view(session, article))

    return await _write(service, write)


async def edit(service: Service, request: UpdateArticle) -> AdminArticleReply:
    portal = await admin_portal(service, request.actor, request.portal)

    def write(session: Session) -> AdminArticleReply:
        article = _article(session, portal.slug, request.slug)
        _apply(session, article, request.article, request.actor.principal)
        if article.status == "published":
            _published(session, portal.org_id, article)
        return AdminArticleReply(article=admin_view(session, article))

    return await _write(service, write)


async def publish(service: Service, request: ArticleAction) -> AdminArticleReply:
    portal = await admin_portal(service, request.actor, request.portal)

    def write(session: Session) -> AdminArticleReply:
        article = _article(session, portal.slug, request.slug)
        if article.status != "published":
            article.status, article.published_at, article.updated_at = "published", now(), now()
            session.add(article)
            _published(session, portal.org_id, article)
        return AdminArticleReply(article=admin_view(session, article))

    return await _write(service, write)


async def unpublish(service: Service, request: ArticleAction) -> AdminArticleReply:
    portal = await admin_portal(service, request.actor, request.portal)

    def write(session: Session) -> AdminArticleReply:
        article = _article(session, portal.slug, request.slug)
        if article.status == "published":
            article.status, article.updated_at = "draft", now()
            session.add(article)
            _withdrawn(session, portal.org_id, article, "unpublished", article.version)
        return AdminArticleReply(article=admin_view(session, article))

    return await _write(service, write)


async def delete(service: Service, request: ArticleAction) -> Deleted:
    portal = await admin_portal(service, request.actor, request.portal)

    def write(session: Session) -> Deleted:
        article = _article(session, portal.slug, request.slug)
        if article.status == "published":
            _withdrawn(session, portal.org_id, article, "deleted", article.version + 1)
        for revision in session.exec(select(ArticleRevision).where(ArticleRevision.article_id == article.id)).all():
            session.delete(revision)
        session.delete(article)
        return Deleted(slug=request.slug, deleted=True)

    return await _write(service, write)


async def get(service: Service, request: ArticleAction) -> AdminArticleReply:
    portal = await admin_portal(service, request.actor, request.portal)
    return await service.read(lambda s: AdminArticleReply(article=admin_view(s, _article(s, portal.slug,
                                                                                          request.slug))))


async def list_all(service: Service, request: AdminListArticles) -> AdminArticleList:
    portal = await admin_portal(service, request.actor, request.portal)

    def read(session: Session) -> AdminArticleList:
        rows = session.exec(select(Article).where(Article.portal == portal.slug)
                            .order_by(col(Article.updated_at).desc())).all()
        return AdminArticleList(articles=[admin_view(session, a) for a in rows])

    return await service.read(read)


async def revisions(service: Service, request: ArticleAction) -> RevisionList:
    portal = await admin_portal(service, request.actor, request.portal)

    def read(session: Session) -> RevisionList:
        article = _article(session, portal.slug, request.slug)
        rows = session.exec(select(ArticleRevision).where(ArticleRevision.article_id == article.id)
                            .order_by(col(ArticleRevision.version))).all()
        return RevisionList(revisions=[Revision(version=r.version, title=r.title, body=r.body,
                                                visibility=r.visibility, author=r.author,  # type: ignore[arg-type]
                                                created_at=r.created_at) for r in rows])

    return await service.read(read)


async def preview(service: Service, request: PreviewArticle) -> ArticlePreview:
    """The Markdown rendered as `_apply` renders an article's body (`domain.render_markdown`): what the editor
    previews is what readers will get. Nothing is stored."""
    await admin_portal(service, request.actor, request.portal)
    return ArticlePreview(body_html=domain.render_markdown(request.body))
