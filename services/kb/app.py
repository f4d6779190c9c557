"""kb's composition root."""

from contracts import operations
from contracts.events import ArticlePublished, ArticleUnpublished
from services.kb import articles, indexing, portals, reading, themes
from services.runtime.service import Service
from services.runtime.settings import Settings


def build(settings: Settings | None = None, **overrides: object) -> Service:
    service = Service("kb", settings or Settings(), produces=(ArticlePublished, ArticleUnpublished),
                      **overrides)  # type: ignore[arg-type]
    endpoints = {
        operations.kb.list_articles: reading.list_articles,
        operations.kb.get_article: reading.get_article,
        operations.kb.list_categories: reading.list_categories,
        operations.kb.create_article: articles.create,
        operations.kb.update_article: articles.edit,
        operations.kb.publish_article: articles.publish,
        operations.kb.unpublish_article: articles.unpublish,
        operations.kb.delete_article: articles.delete,
        operations.kb.admin_get_article: articles.get,
        operations.kb.admin_list_articles: articles.list_all,
        operations.kb.article_revisions: articles.revisions,
        operations.kb.preview_article: articles.preview,
        operations.kb.get_switches: portals.get_switches,
        operations.kb.update_switches: portals.update_switches,
        operations.kb.get_theme: themes.get,
        operations.kb.save_theme_draft: themes.save_draft,
        operations.kb.preview_theme: themes.preview,
        operations.kb.publish_theme: themes.publish,
        operations.kb.upgrade_theme: themes.upgrade,
        operations.kb.portal_appearance: themes.appearance,
    }
    service.answer_all(endpoints)
    indexing.install(service)
    portals.install(service)
    return service
