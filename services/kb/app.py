"""kb's composition root."""

from contracts import kb as rpc
from contracts.events import ArticlePublished, ArticleUnpublished
from services.kb import articles, portals, reading, themes
from services.runtime.service import Service
from services.runtime.settings import Settings


def build(settings: Settings | None = None, **overrides: object) -> Service:
    service = Service("kb", settings or Settings(), produces=(ArticlePublished, ArticleUnpublished),
                      **overrides)  # type: ignore[arg-type]
    endpoints = {
        "list_articles": (rpc.ListArticles, reading.list_articles),
        "get_article": (rpc.GetArticle, reading.get_article),
        "create_article": (rpc.CreateArticle, articles.create),
        "update_article": (rpc.UpdateArticle, articles.edit),
        "publish_article": (rpc.ArticleAction, articles.publish),
        "unpublish_article": (rpc.ArticleAction, articles.unpublish),
        "delete_article": (rpc.ArticleAction, articles.delete),
        "admin_get_article": (rpc.ArticleAction, articles.get),
        "admin_list_articles": (rpc.AdminListArticles, articles.list_all),
        "article_revisions": (rpc.ArticleAction, articles.revisions),
        "get_switches": (rpc.GetKbSwitches, portals.get_switches),
        "update_switches": (rpc.UpdateKbSwitches, portals.update_switches),
        "get_theme": (rpc.ThemeAction, themes.get),
        "save_theme_draft": (rpc.SaveThemeDraft, themes.save_draft),
        "preview_theme": (rpc.ThemeAction, themes.preview),
        "publish_theme": (rpc.ThemeAction, themes.publish),
        "upgrade_theme": (rpc.ThemeAction, themes.upgrade),
        "portal_appearance": (rpc.GetPortalAppearance, themes.appearance),
    }
    reads = {"list_articles", "get_article", "portal_appearance"}
    for operation, (request, handler) in endpoints.items():
        service.rpc(operation, request, concurrent=operation in reads)(handler)
    return service
