"""Knowledge-base articles in the admin console (admins and content managers):

- `GET /admin/portals/{portal}/articles`: every article of a portal, drafts and published, with visibility;
- `GET|POST …/articles/new` and `GET|POST …/articles/{slug}/edit`: the Markdown editor. "Preview" renders the body
  through the kb service's own renderer (`kb.preview_article`, the sanitised HTML readers get) and stores
  nothing; with JavaScript the preview follows the typing through the same operation
  (`POST /api/v1/admin/portals/{portal}/kb/preview`, static/article_editor.js);
- `POST …/{slug}/publish`, `…/unpublish`; `GET|POST …/{slug}/delete` (a confirmation first);
- `GET …/{slug}/revisions`.

Each calls the operation the admin JSON API calls (`services/gateway/routes_admin_kb.py`); the kb service
checks the role again. A refusal shows the form again with the words next to the field and the text kept.
"""

from dataclasses import dataclass, field
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup
from pydantic import ValidationError

from contracts import operations
from contracts.errors import ErrorCode, ServiceError
from contracts.kb import (AdminArticle, AdminListArticles, ArticleAction, ArticleInput, CreateArticle,
                          PreviewArticle, UpdateArticle)
from contracts.roles import Permission
from contracts.rpc import ListPortals, ListStaff, PortalName
from services.gateway.web.console.staff import Staff, require_staff, staff_page
from services.gateway.web.pages import see_other
from services.gateway.web.rendering import gettext
from services.gateway.web.words import _, say

router = APIRouter(include_in_schema=False)

PortalSlug = Path(min_length=1, max_length=100)
ArticleSlug = Path(min_length=1, max_length=200)

TITLE_WORDS = _("Give the article a title (at most 300 characters).")
BODY_WORDS = _("Write the article's text.")
CATEGORY_WORDS = _("A category is at most 100 characters.")
TAKEN_WORDS = _("Another article has the same address (made from its title). Choose another title.")


async def admin_site(request: Request, staff: Staff, slug: str) -> tuple[PortalName, list[PortalName]]:
    """The portal `slug` of the staff member's organisation and all of them (for the portal chooser); another
    organisation's portal is missing to them (`unknown_portal`, 404)."""
    portals = (await request.app.state.rpc.call(operations.auth.list_portals,
                                                ListPortals(actor=staff.actor))).portals
    site = next((p for p in portals if p.slug == slug), None)
    if site is None:
        raise ServiceError(ErrorCode.unknown_portal, "There is no such portal in your organisation.")
    return site, portals


async def chosen_portal(request: Request, staff: Staff) -> str:
    """The portal of `?portal=` (the chooser's GET form), else the organisation's first by name."""
    portals = (await request.app.state.rpc.call(operations.auth.list_portals,
                                                ListPortals(actor=staff.actor))).portals
    if not portals:
        raise ServiceError(ErrorCode.unknown_portal, "This organisation has no portal yet.")
    asked = request.query_params.get("portal", "")
    return next((p.slug for p in portals if p.slug == asked), portals[0].slug)


@dataclass
class Editor:
    """The editor's fields as typed, the preview (sanitised HTML) and errors by field (`title`, `body`,
    `category`, `form`)."""

    title: str = ""
    body: str = ""
    category: str = ""
    visibility: str = "public"
    preview: Markup | None = None
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, article: AdminArticle) -> "Editor":
        return cls(title=article.title, body=article.body, category=article.category or "",
                   visibility=article.visibility, preview=Markup(article.body_html))


async def read_editor(request: Request) -> tuple[Editor, str]:
    """The editor's fields as sent, and the button pressed (`preview`, `save` or `publish`)."""
    form = await request.form()

    def value(name: str) -> str:
        found = form.get(name)
        return found if isinstance(found, str) else ""

    editor = Editor(title=value("title").strip(), body=value("body").replace("\r\n", "\n"),
                    category=value("category").strip(), visibility=value("visibility") or "public")
    return editor, value("action") or "save"


def refusal(request: Request, error: ServiceError | ValidationError) -> dict[str, str]:
    """{field: words} for a refusal of the editor's input."""
    if isinstance(error, ValidationError):
        where = str(error.errors()[0]["loc"][-1]) if error.errors() else ""
        words = {"title": TITLE_WORDS, "body": BODY_WORDS, "category": CATEGORY_WORDS}.get(where)
        return {where: gettext(request, words)} if words else {"form": str(error.errors()[0]["msg"])}
    message = error.message.lower()
    if error.code is ErrorCode.invalid_request and message.startswith("title"):
        return {"title": gettext(request, TITLE_WORDS)}
    if error.code is ErrorCode.invalid_request and message.startswith("body"):
        return {"body": error.message}
    if error.code is ErrorCode.conflict:
        return {"title": gettext(request, TAKEN_WORDS)}
    return {"form": say(request, error)}


def article_input(editor: Editor) -> ArticleInput:
    return ArticleInput(title=editor.title, body=editor.body, category=editor.category or None,
                        visibility=editor.visibility)  # type: ignore[arg-type]


async def editor_page(request: Request, staff: Staff, site: PortalName, portals: list[PortalName], editor: Editor,
                      article: AdminArticle | None = None, *, status: int = 200, notice: str = "") -> HTMLResponse:
    return staff_page(request, staff, "staff/admin_articles_edit.html", section="admin-articles", status=status,
                      site=site, portals=portals, editor=editor, article=article, notice=notice)


@router.get("/admin/articles", include_in_schema=False)
async def articles_home(request: Request) -> Response:
    staff = await require_staff(request, Permission.edit_articles)
    return see_other(f"/admin/portals/{await chosen_portal(request, staff)}/articles")


@router.get("/admin/portals/{portal}/articles", response_class=HTMLResponse)
async def article_list(request: Request, portal: str = PortalSlug) -> HTMLResponse:
    """Every article of the portal, newest change first."""
    staff = await require_staff(request, Permission.edit_articles)
    site, portals = await admin_site(request, staff, portal)
    listed = await request.app.state.rpc.call(operations.kb.admin_list_articles,
                                              AdminListArticles(actor=staff.actor, portal=site.slug))
    deleted = request.query_params.get("deleted", "")[:300]
    return staff_page(request, staff, "staff/admin_articles.html", section="admin-articles", site=site,
                      portals=portals, articles=listed.articles, deleted=deleted)


@router.get("/admin/portals/{portal}/articles/new", response_class=HTMLResponse)
async def new_article(request: Request, portal: str = PortalSlug) -> HTMLResponse:
    staff = await require_staff(request, Permission.edit_articles)
    site, portals = await admin_site(request, staff, portal)
    return await editor_page(request, staff, site, portals, Editor())


@router.post("/admin/portals/{portal}/articles/new", response_class=Response)
async def create_article(request: Request, portal: str = PortalSlug) -> Response:
    """Preview (nothing stored), save as a draft, or save and publish."""
    staff = await require_staff(request, Permission.edit_articles)
    site, portals = await admin_site(request, staff, portal)
    editor, action = await read_editor(request)
    rpc = request.app.state.rpc
    try:
        if action == "preview":
            return await preview(request, staff, site, portals, editor)
        created = await rpc.call(operations.kb.create_article, CreateArticle(
            actor=staff.actor, portal=site.slug, article=article_input(editor), published=action == "publish"))
    except (ServiceError, ValidationError) as error:
        editor.errors = refusal(request, error)
        return await editor_page(request, staff, site, portals, editor, status=getattr(error, "status", 422))
    saved = "published" if action == "publish" else "saved"
    return see_other(f"/admin/portals/{site.slug}/articles/{created.article.slug}/edit?done={saved}")


async def preview(request: Request, staff: Staff, site: PortalName, portals: list[PortalName], editor: Editor,
                  article: AdminArticle | None = None) -> HTMLResponse:
    shown = await request.app.state.rpc.call(operations.kb.preview_article, PreviewArticle(
        actor=staff.actor, portal=site.slug, body=editor.body))
    editor.preview = Markup(shown.body_html)
    return await editor_page(request, staff, site, portals, editor, article,
                             notice=gettext(request, "This is a preview. Nothing is saved yet."))


DONE_WORDS = {"saved": _("The article is saved."), "published": _("The article is saved and published."),
              "unpublished": _("The article is unpublished: only staff editing articles see it now.")}


@router.get("/admin/portals/{portal}/articles/{slug}/edit", response_class=HTMLResponse)
async def edit_article(request: Request, portal: str = PortalSlug, slug: str = ArticleSlug) -> HTMLResponse:
    staff = await require_staff(request, Permission.edit_articles)
    site, portals = await admin_site(request, staff, portal)
    found = await request.app.state.rpc.call(operations.kb.admin_get_article,
                                             ArticleAction(actor=staff.actor, portal=site.slug, slug=slug))
    done = DONE_WORDS.get(request.query_params.get("done", ""))
    return await editor_page(request, staff, site, portals, Editor.of(found.article), found.article,
                             notice=gettext(request, done) if done else "")


@router.post("/admin/portals/{portal}/articles/{slug}/edit", response_class=Response)
async def save_article(request: Request, portal: str = PortalSlug, slug: str = ArticleSlug) -> Response:
    """Preview, save (a new revision; a published article stays published), or save and publish."""
    staff = await require_staff(request, Permission.edit_articles)
    site, portals = await admin_site(request, staff, portal)
    editor, action = await read_editor(request)
    rpc = request.app.state.rpc
    action_of = ArticleAction(actor=staff.actor, portal=site.slug, slug=slug)
    article = (await rpc.call(operations.kb.admin_get_article, action_of)).article
    try:
        if action == "preview":
            return await preview(request, staff, site, portals, editor, article)
        await rpc.call(operations.kb.update_article, UpdateArticle(actor=staff.actor, portal=site.slug, slug=slug,
                                                                   article=article_input(editor)))
        if action == "publish":
            await rpc.call(operations.kb.publish_article, action_of)
    except (ServiceError, ValidationError) as error:
        editor.errors = refusal(request, error)
        return await editor_page(request, staff, site, portals, editor, article, status=getattr(error, "status", 422))
    done = "published" if action == "publish" else "saved"
    return see_other(f"/admin/portals/{site.slug}/articles/{slug}/edit?done={done}")


@router.post("/admin/portals/{portal}/articles/{slug}/publish", response_class=Response)
async def publish(request: Request, portal: str = PortalSlug, slug: str = ArticleSlug) -> Response:
    staff = await require_staff(request, Permission.edit_articles)
    site, _portals = await admin_site(request, staff, portal)
    await request.app.state.rpc.call(operations.kb.publish_article,
                                     ArticleAction(actor=staff.actor, portal=site.slug, slug=slug))
    return see_other(f"/admin/portals/{site.slug}/articles/{slug}/edit?done=published")


@router.post("/admin/portals/{portal}/articles/{slug}/unpublish", response_class=Response)
async def unpublish(request: Request, portal: str = PortalSlug, slug: str = ArticleSlug) -> Response:
    staff = await require_staff(request, Permission.edit_articles)
    site, _portals = await admin_site(request, staff, portal)
    await request.app.state.rpc.call(operations.kb.unpublish_article,
                                     ArticleAction(actor=staff.actor, portal=site.slug, slug=slug))
    return see_other(f"/admin/portals/{site.slug}/articles/{slug}/edit?done=unpublished")


@router.get("/admin/portals/{portal}/articles/{slug}/delete", response_class=HTMLResponse)
async def confirm_delete(request: Request, portal: str = PortalSlug, slug: str = ArticleSlug) -> HTMLResponse:
    """The confirmation before an article and its revisions are deleted."""
    staff = await require_staff(request, Permission.edit_articles)
    site, _portals = await admin_site(request, staff, portal)
    found = await request.app.state.rpc.call(operations.kb.admin_get_article,
                                             ArticleAction(actor=staff.actor, portal=site.slug, slug=slug))
    return staff_page(request, staff, "staff/admin_articles_delete.html", section="admin-articles", site=site,
                      article=found.article)


@router.post("/admin/portals/{portal}/articles/{slug}/delete", response_class=Response)
async def delete(request: Request, portal: str = PortalSlug, slug: str = ArticleSlug) -> Response:
    staff = await require_staff(request, Permission.edit_articles)
    site, _portals = await admin_site(request, staff, portal)
    rpc = request.app.state.rpc
    article = (await rpc.call(operations.kb.admin_get_article,
                              ArticleAction(actor=staff.actor, portal=site.slug, slug=slug))).article
    await rpc.call(operations.kb.delete_article, ArticleAction(actor=staff.actor, portal=site.slug, slug=slug))
    return see_other(f"/admin/portals/{site.slug}/articles?{urlencode({'deleted': article.title[:200]})}")


@router.get("/admin/portals/{portal}/articles/{slug}/revisions", response_class=HTMLResponse)
async def revisions(request: Request, portal: str = PortalSlug, slug: str = ArticleSlug) -> HTMLResponse:
    """Every revision, newest first, with who wrote it."""
    staff = await require_staff(request, Permission.edit_articles)
    site, _portals = await admin_site(request, staff, portal)
    rpc = request.app.state.rpc
    action = ArticleAction(actor=staff.actor, portal=site.slug, slug=slug)
    article = (await rpc.call(operations.kb.admin_get_article, action)).article
    listed = (await rpc.call(operations.kb.article_revisions, action)).revisions
    return staff_page(request, staff, "staff/admin_articles_revisions.html", section="admin-articles", site=site,
                      article=article, revisions=listed[::-1], authors=await authors(request, staff))


async def authors(request: Request, staff: Staff) -> dict[str, str]:
    """Names of the organisation's staff by principal (`user:<id>`), for admins (who may list staff); others see
    their own name and "another staff member"."""
    names = {f"user:{staff.user_id}": staff.name}
    if staff.can(Permission.administer):
        listed = await request.app.state.rpc.call(operations.auth.list_staff, ListStaff(actor=staff.actor))
        names.update({f"user:{m.id}": m.display_name or m.email for m in listed.staff})
    return names
