"""Request/reply messages of the kb service (`rpc.kb.<operation>`): articles, KB switches, themes."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from contracts.rpc import Actor, Reply, Request
from contracts.states import Visibility

ThemeView = Literal["home", "article", "my_conversations", "conversation_detail"]


class Reader(BaseModel):
    """Who reads the knowledge base, as the gateway found them (no session: anonymous)."""

    kind: Literal["anonymous", "customer", "staff"]
    org_id: str | None = None
    role: str | None = Field(default=None, description="Staff role: agent, content_manager or admin.")


class ArticleSummary(BaseModel):
    slug: str
    title: str
    category: str | None = Field(description="Category slug.")
    visibility: Visibility
    locale: str
    updated_at: datetime
    snippet: str | None = Field(default=None, description="With `q`: the matching text, matches in <mark>; "
                                                          "safe HTML.")


class ArticleView(ArticleSummary):
    body_html: str = Field(description="The Markdown body rendered to sanitised HTML.")


class ArticlePage(Reply):
    articles: list[ArticleSummary]
    next_cursor: str | None
    corrected_query: str | None = Field(default=None, description="The query as searched, when words were "
                                                                  "corrected (typos).")


class ListArticles(Request):
    reader: Reader
    portal: str = Field(min_length=1, max_length=100)
    q: str | None = Field(default=None, max_length=200)
    category: str | None = Field(default=None, max_length=100)
    cursor: str | None = Field(default=None, max_length=200)
    limit: int = Field(default=20, ge=1, le=100)


class GetArticle(Request):
    reader: Reader
    portal: str = Field(min_length=1, max_length=100)
    slug: str = Field(min_length=1, max_length=200)


class ArticleReply(Reply):
    article: ArticleView


class ListCategories(Request):
    reader: Reader
    portal: str = Field(min_length=1, max_length=100)


class CategorySummary(BaseModel):
    slug: str = Field(examples=["billing"])
    name: str = Field(examples=["Billing"])
    articles: int = Field(description="Published articles in it that the reader may see.")


class CategoryList(Reply):
    categories: list[CategorySummary] = Field(description="Categories holding an article the reader may see, "
                                                          "by name.")


# -- admin: articles -------------------------------------------------------------------------

class ArticleInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(default=None, max_length=300)
    body: str | None = Field(default=None, max_length=200_000, description="Markdown.")
    visibility: Visibility | None = None
    category: str | None = Field(default=None, max_length=100, description="Category slug (created if new).")
    locale: str | None = Field(default=None, max_length=20, pattern=r"^[a-z]{2}(-[A-Z]{2})?$")


class AdminArticle(ArticleView):
    status: Literal["draft", "published"]
    version: int
    body: str = Field(description="The Markdown source.")
    published_at: datetime | None


class AdminArticleReply(Reply):
    article: AdminArticle


class CreateArticle(Request):
    actor: Actor
    portal: str = Field(min_length=1, max_length=100)
    article: ArticleInput
    published: bool = False
    slug: str | None = Field(default=None, max_length=200, pattern=r"^[a-z0-9][a-z0-9-]*$")


class UpdateArticle(Request):
    actor: Actor
    portal: str = Field(min_length=1, max_length=100)
    slug: str = Field(min_length=1, max_length=200)
    article: ArticleInput


class ArticleAction(Request):
    """publish, unpublish, delete, revisions, get (admin)."""

    actor: Actor
    portal: str = Field(min_length=1, max_length=100)
    slug: str = Field(min_length=1, max_length=200)


class AdminListArticles(Request):
    actor: Actor
    portal: str = Field(min_length=1, max_length=100)


class AdminArticleList(Reply):
    articles: list[AdminArticle]


class Revision(BaseModel):
    version: int
    title: str
    body: str
    visibility: Visibility
    author: str
    created_at: datetime


class RevisionList(Reply):
    revisions: list[Revision]


class Deleted(Reply):
    slug: str
    deleted: bool


class PreviewArticle(Request):
    """An article's Markdown as it is being written, rendered as the article would serve it (editors only)."""

    actor: Actor
    portal: str = Field(min_length=1, max_length=100)
    body: str = Field(max_length=200_000, description="Markdown.")


class ArticlePreview(Reply):
    body_html: str = Field(description="The body as the article would serve it: the same sanitised HTML as "
                                       "`body_html`.")


# -- admin: KB switches ----------------------------------------------------------------------

class KbSwitches(BaseModel):
    model_config = ConfigDict(extra="forbid")

    portal_for_agents: bool | None = Field(default=None, description="Turn on for agents and admins.")
    internal_kb: bool | None = Field(default=None, description="Internal KB.")
    show_only_internal: bool | None = Field(default=None, description="Show only internal articles to staff.")


class KbSettingsView(Reply):
    portal: str
    portal_for_agents: bool
    internal_kb: bool
    show_only_internal: bool


class GetKbSwitches(Request):
    actor: Actor
    portal: str = Field(min_length=1, max_length=100)


class UpdateKbSwitches(GetKbSwitches):
    switches: KbSwitches


# -- themes --------------------------------------------------------------------------------

class ViewTheme(BaseModel):
    model_config = ConfigDict(extra="forbid")

    base_template: str = Field(default="standard", pattern=r"^[a-z0-9-]{1,40}$")
    colours: dict[str, str] = Field(
        default_factory=dict, examples=[{"primary": "#2a5bd7", "text": "#1f2328", "background": "#ffffff"}],
        description="Named colours, `#rrggbb`, served as CSS custom properties `--<name>`. The portal reads "
                    "`primary` (links, buttons), `on_primary` (words on buttons), `text`, `background`, `muted`, "
                    "`surface` (panels), `danger` (errors); other names are for the custom CSS. Words must keep a "
                    "WCAG 2.1 AA contrast of 4.5:1 (text, muted, danger, primary on background; text on surface; "
                    "on_primary on primary; a colour left out counts as the default): else `invalid_setting`.")
    logo_url: str | None = Field(default=None, max_length=2000)
    custom_css: str = Field(default="", max_length=20_000, description="A safe subset: plain selectors, "
                                                                        "whitelisted properties, no url().")
    header: str = Field(default="", max_length=10_000, description="Markdown.")
    footer: str = Field(default="", max_length=10_000, description="Markdown.")


class ThemeInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    version: int = Field(default=3, ge=1, le=3, description="Version of the base templates the theme was made "
                                                             "for (3 is current; older ones can be upgraded).")
    views: dict[ThemeView, ViewTheme]


class RenderedView(BaseModel):
    base_template: str
    colours: dict[str, str]
    logo_url: str | None
    css: str = Field(description="The custom CSS as served (sanitised, scoped to `.portico-portal`).")
    header_html: str
    footer_html: str


class ThemeState(BaseModel):
    name: str
    version: int = Field(description="Version of the base templates the theme was made for.")
    views: dict[str, RenderedView]
    upgrade_needed: list[str] = Field(description="Views whose templates need a newer theme version.")


class ThemeReply(Reply):
    portal: str
    draft: ThemeState | None
    published: ThemeState | None
    required_version: int
    draft_source: ThemeInput | None = Field(default=None, description="The draft as it was saved (Markdown, CSS "
                                                                      "as written), to edit it further.")
    published_source: ThemeInput | None = Field(default=None, description="The published theme as it was saved "
                                                                          "(the default theme while none is).")
    colour_defaults: dict[str, str] = Field(default_factory=dict, examples=[{"primary": "#2a5bd7"}],
                                            description="The colours the portal reads, each with the colour it "
                                                        "shows where a theme leaves it out.")


class ThemeAction(Request):
    """get, preview, publish, upgrade."""

    actor: Actor
    portal: str = Field(min_length=1, max_length=100)


class SaveThemeDraft(ThemeAction):
    theme: ThemeInput


# -- the portal's public configuration -----------------------------------------------------

class GetPortalAppearance(Request):
    portal: str = Field(min_length=1, max_length=100)


class PortalAppearance(Reply):
    portal: str
    switches: dict[str, bool]
    theme: ThemeState | None
