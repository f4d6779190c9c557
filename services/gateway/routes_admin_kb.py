"""Admin API for the knowledge base (admins and content managers): articles, KB switches, themes."""

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field

from contracts import operations
from contracts.kb import (
    AdminArticleList,
    AdminArticleReply,
    AdminListArticles,
    ArticleAction,
    ArticleInput,
    ArticlePreview,
    CreateArticle,
    Deleted,
    GetKbSwitches,
    KbSettingsView,
    KbSwitches,
    PreviewArticle,
    RevisionList,
    SaveThemeDraft,
    ThemeAction,
    ThemeInput,
    ThemeReply,
    ThemeState,
    UpdateArticle,
    UpdateKbSwitches,
    Visibility,
)
from services.gateway.auth import AdminActor
from services.gateway.deps import PortalSlug, Rpc

router = APIRouter(tags=["admin: knowledge base"])

Slug = Path(min_length=1, max_length=200)


class NewArticleBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=300, examples=["Reset your password"])
    body: str = Field(max_length=200_000, description="Markdown.")
    visibility: Visibility = "public"
    published: bool = False
    category: str | None = Field(default=None, max_length=100)
    locale: str = Field(default="en", max_length=20, pattern=r"^[a-z]{2}(-[A-Z]{2})?$")
    slug: str | None = Field(default=None, max_length=200, pattern=r"^[a-z0-9][a-z0-9-]*$")


ARTICLES = "/api/v1/admin/portals/{portal}/kb/articles"


@router.post(ARTICLES, status_code=201, response_model=AdminArticleReply, summary="New article; returns its slug")
async def create_article(body: NewArticleBody, actor: AdminActor, rpc: Rpc,
                         portal: str = PortalSlug) -> AdminArticleReply:
    article = ArticleInput(title=body.title, body=body.body, visibility=body.visibility, category=body.category,
                           locale=body.locale)
    return await rpc.call(operations.kb.create_article, CreateArticle(
        actor=actor, portal=portal, article=article, published=body.published, slug=body.slug))


@router.get(ARTICLES, response_model=AdminArticleList, summary="Every article, drafts included")
async def list_articles(actor: AdminActor, rpc: Rpc, portal: str = PortalSlug) -> AdminArticleList:
    return await rpc.call(operations.kb.admin_list_articles, AdminListArticles(actor=actor, portal=portal))


class PreviewBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    body: str = Field(max_length=200_000, description="Markdown.", examples=["**Bold** and <script>x</script>"])


@router.post("/api/v1/admin/portals/{portal}/kb/preview", response_model=ArticlePreview,
             summary="Render an article's Markdown as the article would serve it; nothing is stored")
async def preview_article(body: PreviewBody, actor: AdminActor, rpc: Rpc, portal: str = PortalSlug) -> ArticlePreview:
    return await rpc.call(operations.kb.preview_article, PreviewArticle(actor=actor, portal=portal, body=body.body))


@router.get(ARTICLES + "/{slug}", response_model=AdminArticleReply)
async def get_article(actor: AdminActor, rpc: Rpc, portal: str = PortalSlug, slug: str = Slug) -> AdminArticleReply:
    return await rpc.call(operations.kb.admin_get_article, ArticleAction(actor=actor, portal=portal, slug=slug))


@router.patch(ARTICLES + "/{slug}", response_model=AdminArticleReply, summary="Edit (a new revision)")
async def edit_article(body: ArticleInput, actor: AdminActor, rpc: Rpc, portal: str = PortalSlug,
                       slug: str = Slug) -> AdminArticleReply:
    return await rpc.call(operations.kb.update_article,
                          UpdateArticle(actor=actor, portal=portal, slug=slug, article=body))


@router.post(ARTICLES + "/{slug}/publish", response_model=AdminArticleReply)
async def publish(actor: AdminActor, rpc: Rpc, portal: str = PortalSlug, slug: str = Slug) -> AdminArticleReply:
    return await rpc.call(operations.kb.publish_article, ArticleAction(actor=actor, portal=portal, slug=slug))


@router.post(ARTICLES + "/{slug}/unpublish", response_model=AdminArticleReply)
async def unpublish(actor: AdminActor, rpc: Rpc, portal: str = PortalSlug, slug: str = Slug) -> AdminArticleReply:
    return await rpc.call(operations.kb.unpublish_article, ArticleAction(actor=actor, portal=portal, slug=slug))


@router.delete(ARTICLES + "/{slug}", response_model=Deleted)
async def delete(actor: AdminActor, rpc: Rpc, portal: str = PortalSlug, slug: str = Slug) -> Deleted:
    return await rpc.call(operations.kb.delete_article, ArticleAction(actor=actor, portal=portal, slug=slug))


@router.get(ARTICLES + "/{slug}/revisions", response_model=RevisionList)
async def revisions(actor: AdminActor, rpc: Rpc, portal: str = PortalSlug, slug: str = Slug) -> RevisionList:
    return await rpc.call(operations.kb.article_revisions, ArticleAction(actor=actor, portal=portal, slug=slug))


@router.get("/api/v1/admin/portals/{portal}/kb/settings", response_model=KbSettingsView)
async def get_switches(actor: AdminActor, rpc: Rpc, portal: str = PortalSlug) -> KbSettingsView:
    return await rpc.call(operations.kb.get_switches, GetKbSwitches(actor=actor, portal=portal))


@router.patch("/api/v1/admin/portals/{portal}/kb/settings", response_model=KbSettingsView,
              summary="Portal for agents and admins, internal KB, show only internal articles")
async def update_switches(body: KbSwitches, actor: AdminActor, rpc: Rpc, portal: str = PortalSlug) -> KbSettingsView:
    return await rpc.call(operations.kb.update_switches, UpdateKbSwitches(actor=actor, portal=portal, switches=body))


THEME = "/api/v1/admin/portals/{portal}/theme"


@router.get(THEME, response_model=ThemeReply, summary="The draft and the published theme")
async def get_theme(actor: AdminActor, rpc: Rpc, portal: str = PortalSlug) -> ThemeReply:
    return await rpc.call(operations.kb.get_theme, ThemeAction(actor=actor, portal=portal))


@router.put(THEME + "/draft", response_model=ThemeReply, summary="Save the draft theme")
async def save_draft(body: ThemeInput, actor: AdminActor, rpc: Rpc, portal: str = PortalSlug) -> ThemeReply:
    return await rpc.call(operations.kb.save_theme_draft, SaveThemeDraft(actor=actor, portal=portal, theme=body))


@router.get(THEME + "/preview", response_model=ThemeState, summary="The draft as the portal would serve it")
async def preview(actor: AdminActor, rpc: Rpc, portal: str = PortalSlug) -> ThemeState:
    return await rpc.call(operations.kb.preview_theme,
                          ThemeAction(actor=actor, portal=portal))  # type: ignore[type-var]


@router.post(THEME + "/publish", response_model=ThemeReply, summary="Publish the draft")
async def publish_theme(actor: AdminActor, rpc: Rpc, portal: str = PortalSlug) -> ThemeReply:
    return await rpc.call(operations.kb.publish_theme, ThemeAction(actor=actor, portal=portal))


@router.post(THEME + "/upgrade", response_model=ThemeReply,
             summary="Move the theme to the current template version, keeping its customisations")
async def upgrade_theme(actor: AdminActor, rpc: Rpc, portal: str = PortalSlug) -> ThemeReply:
    return await rpc.call(operations.kb.upgrade_theme, ThemeAction(actor=actor, portal=portal))
