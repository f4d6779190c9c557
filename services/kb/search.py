"""Full-text search of published articles: SQLite FTS5 (bm25) by default, PostgreSQL full-text search
(ts_rank) on PostgreSQL, with snippets whose matches are highlighted, and typo tolerance: a query word
that appears in no article is replaced by the closest word that does ("pasword" finds "password").
"""

import html
import re
import threading
from collections import Counter
from dataclasses import dataclass

from rapidfuzz import fuzz, process
from sqlalchemy import text
from sqlmodel import Session, col, select

from services.kb.models import Article

WORD = re.compile(r"[^\W_]{2,}", re.UNICODE)
MARK_START, MARK_END = "\x02", "\x03"
MAX_TERMS = 8


@dataclass(frozen=True)
class Hit:
    article: Article
    snippet: str


def words(text_: str) -> list[str]:
    return [w.lower() for w in WORD.findall(text_)]


@dataclass(frozen=True)
class Words:
    """A portal's published words: how many articles each appears in, and the sorted list for matching."""

    documents: int
    frequency: dict[str, int]
    choices: list[str]


class Vocabulary:
    """The words of each portal's published articles, rebuilt (once, however many ask) after a change."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, frozenset[str]], tuple[int, Words]] = {}
        self._lock = threading.Lock()

    def of(self, session: Session, portal: str, content_version: int, visibilities: frozenset[str]) -> Words:
        """Only the words of articles this reader may see: a correction never hints at a hidden article."""
        key = (portal, visibilities)
        cached = self._cache.get(key)
        if cached and cached[0] == content_version:
            return cached[1]
        with self._lock:
            cached = self._cache.get(key)
            if cached and cached[0] == content_version:
                return cached[1]
            frequency: Counter[str] = Counter()
            documents = 0
            for title, body in session.exec(select(Article.title, Article.body_text).where(
                    Article.portal == portal, Article.status == "published",
                    col(Article.visibility).in_(visibilities))).all():
                documents += 1
                frequency.update(set(words(title)) | set(words(body)))
            built = Words(documents=documents, frequency=dict(frequency), choices=sorted(frequency))
            self._cache[key] = (content_version, built)
            return built

    @staticmethod
    def correct(query: str, known: Words) -> tuple[list[str], bool]:
        """The query's words, each unknown one replaced by the closest known word (if close enough);
        words found in most articles ("how", "my") are left out when the query has better ones."""
        terms, changed = [], False
        for word in words(query)[:MAX_TERMS]:
            if word in known.frequency or len(word) < 4:
                terms.append(word)
                continue
            best = process.extractOne(word, known.choices, scorer=fuzz.ratio, score_cutoff=75)
            terms.append(best[0] if best else word)
            changed = changed or (best is not None and best[0] != word)
        distinctive = [t for t in terms if known.frequency.get(t, 0) <= known.documents / 2]
        return (distinctive or terms), changed


def index_article(session: Session, article: Article) -> None:
    """Keep the SQLite FTS5 index current: it holds published articles only, with what the search filters
    on, so a search never reads the articles table beyond the page it answers with. (PostgreSQL computes
    its search column itself.)"""
    if session.get_bind().dialect.name != "sqlite":
        return
    unindex_article(session, article.id)
    if article.status == "published":
        session.connection().execute(text(
            "INSERT INTO article_search (title, body, article_id, portal, visibility, category_id) "
            "VALUES (:title, :body, :id, :portal, :visibility, :category)"),
            {"title": article.title, "body": article.body_text, "id": article.id, "portal": article.portal,
             "visibility": article.visibility, "category": article.category_id or ""})


def unindex_article(session: Session, article_id: str) -> None:
    if session.get_bind().dialect.name == "sqlite":
        session.connection().execute(text("DELETE FROM article_search WHERE article_id = :id"), {"id": article_id})


def safe_snippet(raw: str) -> str:
    """Escape the text; only our own match markers become <mark>. (PostgreSQL searches the text with
    angle brackets swapped for ‹›, so that it does not take `<b>` written in an article for markup.)"""
    raw = raw.replace("‹", "<").replace("›", ">")
    return html.escape(raw).replace(MARK_START, "<mark>").replace(MARK_END, "</mark>")


def search(session: Session, *, portal: str, visibilities: frozenset[str], terms: list[str], category_id: str | None,
           limit: int, offset: int) -> list[Hit]:
    if not terms:
        return []
    visible = sorted(visibilities)
    if session.get_bind().dialect.name == "sqlite":
        # Each word quoted (no FTS syntax from the user), any of them matching; bm25 ranks the articles
        # with more of them, and title matches, first.
        match = " OR ".join('"' + t.replace('"', '""') + '"' + ("*" if i == len(terms) - 1 else "")
                            for i, t in enumerate(terms))
        sql = (
            "SELECT article_id, snippet(article_search, 1, :start, :end, '…', 16) AS snip "
            "FROM article_search WHERE article_search MATCH :match AND portal = :portal "
            f"AND visibility IN ({', '.join(f':v{i}' for i in range(len(visible)))}) "
            + ("AND category_id = :category " if category_id else "")
            + "ORDER BY bm25(article_search, 10.0, 1.0), article_id LIMIT :limit OFFSET :offset")
    else:
        match = " | ".join(re.sub(r"[^\w]", "", t) for t in terms if re.sub(r"[^\w]", "", t))
        if not match:
            return []
        sql = (
            "SELECT a.id, ts_headline('english', translate(a.body_text, '<>', '‹›'), q, 'StartSel=' || :start || ', StopSel=' || :end || "
            "', MaxFragments=1, MaxWords=24, MinWords=8') AS snip "
            "FROM articles a, to_tsquery('english', :match) q "
            "WHERE a.search @@ q AND a.portal = :portal AND a.status = 'published' "
            f"AND a.visibility IN ({', '.join(f':v{i}' for i in range(len(visible)))}) "
            + ("AND a.category_id = :category " if category_id else "")
            + "ORDER BY ts_rank_cd(a.search, q) DESC, a.id LIMIT :limit OFFSET :offset")
    params = {"start": MARK_START, "end": MARK_END, "match": match, "portal": portal, "category": category_id,
              "limit": limit, "offset": offset, **{f"v{i}": v for i, v in enumerate(visible)}}
    found = session.connection().execute(text(sql), params).all()
    articles = {a.id: a for a in session.exec(select(Article).where(col(Article.id).in_([r[0] for r in found])))}
    return [Hit(articles[r[0]], safe_snippet(r[1] or "")) for r in found if r[0] in articles]
