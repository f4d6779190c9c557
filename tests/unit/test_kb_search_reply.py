"""kb writes a search page's JSON itself (`reading.page_json`), from each article's summary written once when
indexed: it must be the very bytes pydantic writes for the same `ArticlePage`."""

from datetime import UTC, datetime

import pytest

from contracts.kb import ArticlePage, ArticleSummary
from services.kb import reading, search
from services.runtime.rpc import data_body

AWKWARD = 'Quote " backslash \\ slash / tab\t newline\n nul\x00 \x1f bell\x07 del\x7f é ü 日本 😀 \u2028 <mark>&amp;'


def _hit(n: int, *, title: str, category: str | None, updated_at: datetime, snippet: str) -> search.Hit:
    summary = ArticleSummary(slug=f"a-{n}", title=title, category=category, visibility="public", locale="en",
                             updated_at=updated_at.isoformat())  # type: ignore[arg-type]
    article = search.Indexed(portal="demo", slug=f"a-{n}", title=title, category=category, visibility="public",
                             locale="en", updated_at=updated_at.isoformat(), body="",
                             summary_json=search.summary_head(summary))
    return search.Hit(article_id=f"id-{n}", article=article, snippet=snippet)


def _expected(hits: list[search.Hit], next_cursor: str | None, corrected: str | None) -> bytes:
    page = ArticlePage(articles=[ArticleSummary(slug=h.article.slug, title=h.article.title, category=h.article.category,
                                                visibility=h.article.visibility, locale=h.article.locale,  # type: ignore[arg-type]
                                                updated_at=h.article.updated_at, snippet=h.snippet)  # type: ignore[arg-type]
                                 for h in hits], next_cursor=next_cursor, corrected_query=corrected)
    return data_body(page)


@pytest.mark.parametrize("updated_at", [datetime(2026, 12, 1, 14, 5, 6, 789000, tzinfo=UTC),  # PostgreSQL
                                        datetime(2026, 12, 1, 14, 5, 6),  # SQLite: naive
                                        datetime(2026, 12, 1, 14, 5, 6, 123456)])
def test_page_is_written_as_pydantic_writes_it(updated_at):
    hits = [_hit(0, title=AWKWARD, category=None, updated_at=updated_at, snippet=AWKWARD),
            _hit(1, title="Reset your password", category="account", updated_at=updated_at,
                 snippet="Reset your <mark>password</mark>…")]
    for next_cursor, corrected in ((None, None), ("MjA", "password reset"), ("MjA", AWKWARD)):
        assert data_body(reading.page_json(hits, next_cursor, corrected)) == _expected(hits, next_cursor, corrected)


def test_an_empty_page():
    assert data_body(reading.page_json([], None, None)) == _expected([], None, None)
    assert data_body(reading.page_json([], None, "invoice")) == _expected([], None, "invoice")
