"""Full-text search of published articles: an in-memory tantivy index (BM25, English stemming, title
matches weighted 10:1 over body matches) held by each kb replica, with snippets whose matches are
highlighted (made by tantivy from the part of the body densest in the query's words, `snippet_window`), and
typo tolerance: a query word that appears in no article the reader may see is replaced by
the closest word that does ("pasword" finds "password").

The index is built from the database when the replica starts and kept current from it: the replica that
writes an article refreshes its own index before it answers (what an editor publishes, they can find at
once), and every replica refreshes the articles named by the kb stream's `ArticlePublished` and
`ArticleUnpublished` events (`services.kb.indexing`), so each sees every other's writes. A refresh reads
the articles' current rows, so it can be repeated and applied in any order. It works the same on SQLite
and PostgreSQL: the database is never asked to search.

The typo vocabulary (the words of the articles each reader may see, with how many articles each appears
in) is rebuilt from the index by the refresh, off the search path: a search reads the vocabulary that was
current when it started and never waits for a rebuild.
"""

import html
import json
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

import tantivy
from rapidfuzz import fuzz, process
from sqlmodel import Session, col, select

from contracts.kb import ArticleSummary
from services.kb.models import Article, Category

WORD = re.compile(r"[^\W_]{2,}", re.UNICODE)
MAX_TERMS = 8
TITLE_BOOST = 10.0
SNIPPET_CHARS = 150
CORRECTIONS_KEPT = 10_000  # unknown words whose closest known word a vocabulary keeps
SNIPPET_CONTEXT = 20  # characters before a snippet's first match that it may show
# Score of an article that matches the last query word only as a prefix ("pass" of "password"): below
# what an exact match of any word scores, so it only ranks articles that match nothing better.
PREFIX_SCORE = 0.05
VISIBILITIES = ("public", "internal")
WRITER_HEAP = 15_000_000  # bytes: tantivy's minimum per indexing thread
# What the index's `en_stem` tokenizer makes of words: the forms a snippet's highlighted terms take.
STEMS = (tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple()).filter(tantivy.Filter.remove_long(40))
         .filter(tantivy.Filter.lowercase()).filter(tantivy.Filter.stemmer("english")).build())


def words(text_: str) -> list[str]:
    return [w.lower() for w in WORD.findall(text_)]


@dataclass(frozen=True, slots=True)
class Indexed:
    """What the index keeps of a published article beside tantivy (which stores only its id): what a summary
    shows, its words' source for the typo vocabulary, its body for snippets, and its summary written once as
    the reply's JSON."""

    portal: str
    slug: str
    title: str
    category: str | None
    visibility: str
    locale: str
    updated_at: str  # ISO 8601
    body: str
    summary_json: bytes  # `summary_head`: the ArticleSummary's JSON up to its snippet's value


def summary_head(summary: ArticleSummary) -> bytes:
    """`summary` (its snippet None) as pydantic writes it in a reply, less the snippet's value and the closing
    brace: `{"slug":...,"snippet":`. The snippet is the last field (`contracts.kb.ArticleSummary`)."""
    written = summary.__pydantic_serializer__.to_json(summary)
    if not written.endswith(b'"snippet":null}'):
        raise RuntimeError("contracts.kb.ArticleSummary must end with its snippet")
    return written[:-len(b"null}")]


# Writes a str as JSON the way pydantic (serde_json) does: `"` and `\` escaped, control characters as \n,
# \t, ... or \u00XX, everything else (non-ASCII too) as it is.
json_string = json.encoder.encode_basestring  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Hit:
    """One article of a result page, from the index alone (no database read): what a summary shows."""

    article_id: str
    article: Indexed  # slug, title, category, visibility, locale, updated_at: what a summary shows
    snippet: str  # safe HTML: escaped text, matches in <mark>

    def summary_json(self) -> bytes:
        """The hit as a reply's `ArticleSummary`, JSON, as pydantic writes it."""
        return self.article.summary_json + json_string(self.snippet).encode() + b"}"


@dataclass(frozen=True)
class Words:
    """A portal's published words a reader may see: how many articles each appears in, and the sorted list
    the closest one is chosen from; with the closest word found for each unknown one asked about so far
    (`closest`)."""

    documents: int
    frequency: dict[str, int]
    choices: list[str] = field(default_factory=list)
    _closest: dict[str, str | None] = field(default_factory=dict, compare=False, repr=False)

    def closest(self, word: str) -> str | None:
        """The known word closest to `word` (rapidfuzz ratio ≥ 75), None when none is that close. What was
        found is kept with these words (a new vocabulary starts afresh), up to CORRECTIONS_KEPT words:
        misspellings recur ("pasword"), and each costs a pass over every word."""
        if word in self._closest:
            return self._closest[word]
        best = process.extractOne(word, self.choices, scorer=fuzz.ratio, score_cutoff=75)
        if len(self._closest) >= CORRECTIONS_KEPT:
            self._closest.clear()
        self._closest[word] = found = best[0] if best else None
        return found


NO_WORDS = Words(documents=0, frequency={})


def correct(query: str, known: Words) -> tuple[list[str], bool]:
    """The query's words (at most MAX_TERMS), each unknown one of 4+ letters replaced by the closest known
    word (rapidfuzz ratio ≥ 75); words found in most articles ("how", "my") are left out when the query has
    better ones. Returns (terms, whether a word was replaced)."""
    terms, changed = [], False
    for word in words(query)[:MAX_TERMS]:
        if word in known.frequency or len(word) < 4:
            terms.append(word)
            continue
        best = known.closest(word)
        terms.append(best or word)
        changed = changed or (best is not None and best != word)
    distinctive = [t for t in terms if known.frequency.get(t, 0) <= known.documents / 2]
    return (distinctive or terms), changed


def _schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    # Only the id is stored: the rest of what a hit shows is kept beside the index (`Indexed`), where reading
    # it costs no decompression of tantivy's document store.
    builder.add_text_field("id", stored=True, tokenizer_name="raw")
    for name in ("portal", "visibility", "category"):  # exact values: filters
        builder.add_text_field(name, stored=False, tokenizer_name="raw")
    # Who may see the article, as one term per reader scope (`scope_term`): a search filters on one term.
    builder.add_text_field("scope", stored=False, index_option="basic", tokenizer_name="raw")
    for name in ("slug", "locale", "updated_at"):
        builder.add_text_field(name, stored=False, index_option="basic", tokenizer_name="raw")
    builder.add_text_field("title", stored=False, tokenizer_name="en_stem")
    builder.add_text_field("body", stored=False, tokenizer_name="en_stem")
    builder.add_integer_field("version", stored=False)
    return builder.build()


def marked(snippet: tantivy.Snippet) -> str:
    """The snippet as safe HTML: every character escaped, matches in <mark>. tantivy escapes the text as
    `html.escape` does and wraps matches in <b>; a <b> of the text itself is escaped, so only its own are
    left to rename."""
    return snippet.to_html().replace("<b>", "<mark>").replace("</b>", "</mark>")


def _likely_matches(lowered: str, prefixes: list[tuple[str, float]]) -> list[tuple[int, float]]:
    """(offset, weight) of each word of `lowered` that starts like one of the query's stems, in order."""
    found = []
    for prefix, weight in prefixes:
        at = lowered.find(prefix)
        while at >= 0:
            if at == 0 or not lowered[at - 1].isalnum():
                found.append((at, weight))
            at = lowered.find(prefix, at + len(prefix))
    found.sort()
    return found


def snippet_window(body: str, prefixes: list[tuple[str, float]]) -> str | None:
    """The part of `body` whose first SNIPPET_CHARS hold the most (weighted) words that start like a query
    stem, from a word or two before the first of them to the end of the word SNIPPET_CHARS after it; None
    when no word does (or lowercasing changes the text's length). A snippet made of it alone costs a fraction
    of one made of the whole body: the tokenizer only reads the window."""
    lowered = body.lower()
    if len(lowered) != len(body):
        return None
    found = _likely_matches(lowered, prefixes)
    if not found:
        return None
    best, start, total, last = -1.0, 0, 0.0, 0
    for first, (at, _) in enumerate(found):  # for each start, the weights of the words within SNIPPET_CHARS
        while last < len(found) and found[last][0] < at + SNIPPET_CHARS:
            total += found[last][1]
            last += 1
        if total > best:
            best, start = total, at
        total -= found[first][1]
    end = start + SNIPPET_CHARS
    while end < len(body) and body[end].isalnum():
        end += 1
    # A few words before the first match too (what a match is part of: "<b>bold</b>"), from a word's start.
    begin = max(start - SNIPPET_CONTEXT, 0)
    while 0 < begin < start and not body[begin - 1].isspace():
        begin += 1
    return body[begin:end]


# The sets of visibilities a reader can have (`domain.visible_to`); each has its own vocabulary.
READER_SCOPES = (frozenset({"public"}), frozenset({"internal"}), frozenset(VISIBILITIES))


def scope_term(portal: str, visibilities: frozenset[str]) -> str:
    """The `scope` term of a portal's articles of these visibilities (portal slugs hold no spaces)."""
    return f"{portal} {'+'.join(sorted(visibilities))}"


def article_words(title: str, body: str) -> set[str]:
    return set(words(title)) | set(words(body))


class _Counts:
    """The words of a portal's articles of some visibilities, with how many articles each appears in:
    kept up to date one article at a time, and turned into an immutable `Words` for the searches. The sorted
    list of words is made again only when a word came or went (an edit seldom brings a new word)."""

    def __init__(self) -> None:
        self.documents = 0
        self.frequency: dict[str, int] = {}
        self._choices: list[str] | None = None  # sorted(frequency), while no word came or went

    def add(self, found: set[str]) -> None:
        self.documents += 1
        for word in found:
            held = self.frequency.get(word, 0)
            if not held:
                self._choices = None
            self.frequency[word] = held + 1

    def remove(self, found: set[str]) -> None:
        self.documents -= 1
        for word in found:
            left = self.frequency.get(word, 0) - 1
            if left > 0:
                self.frequency[word] = left
            else:
                self.frequency.pop(word, None)
                self._choices = None

    def words(self) -> Words:
        if self._choices is None:
            self._choices = sorted(self.frequency)
        return Words(documents=self.documents, frequency=dict(self.frequency), choices=self._choices)


class SearchIndex:
    """The published articles of every portal, searchable, with each portal's typo vocabulary.

    Thread-safe: searches run at the same time as each other and as one refresh; refreshes run one at a
    time. Nothing a search reads is changed in place: a refresh swaps in a new searcher and vocabulary. The
    vocabulary is kept by counting, per article changed, the words it loses and gains: nothing is read
    again from all the articles after a change."""

    def __init__(self) -> None:
        self.schema = _schema()
        self.index = tantivy.Index(self.schema)  # in memory: rebuilt from the database at start
        self._writer = self.index.writer(WRITER_HEAP, 1)
        # The searcher and what is kept beside it of each article it holds, swapped together by a refresh: a
        # search reads both at once, so every hit it finds has its `Indexed`.
        self._view: tuple[tantivy.Searcher, dict[str, Indexed]] = (self.index.searcher(), {})
        self._versions: dict[str, tuple[str, int]] = {}  # indexed article id -> (portal, version)
        self._counts: dict[tuple[str, frozenset[str]], _Counts] = {}
        self._vocabulary: dict[tuple[str, frozenset[str]], Words] = {}
        self._refreshing = threading.Lock()

    # -- keeping it current ---------------------------------------------------------------------

    def rebuild(self, session: Session) -> int:
        """Index every published article of the database afresh; the number indexed."""
        with self._refreshing:
            self._writer.delete_all_documents()
            self._versions, self._counts, self._vocabulary = {}, {}, {}
            rows = session.exec(select(Article).where(Article.status == "published")).all()
            self._write(session, rows, [], afresh=True)
            return len(rows)

    def refresh(self, session: Session, article_ids: Iterable[str]) -> int:
        """Make the index hold what the database now says of these articles: a published one (re)indexed if
        its version changed, any other removed. Idempotent, in any order. The number of changes made."""
        ids = sorted(set(article_ids))
        if not ids:
            return 0
        with self._refreshing:
            current = {a.id: a for a in session.exec(select(Article).where(col(Article.id).in_(ids))).all()}
            changed = [current[i] for i in ids if i in current and current[i].status == "published"
                       and self._versions.get(i, ("", -1))[1] != current[i].version]
            gone = [i for i in ids if i in self._versions
                    and (i not in current or current[i].status != "published")]
            if changed or gone:
                self._write(session, changed, gone)
            return len(changed) + len(gone)

    def _count(self, portal: str, visibility: str, found: set[str], added: bool) -> None:
        for scope in READER_SCOPES:
            if visibility in scope:
                counts = self._counts.setdefault((portal, scope), _Counts())
                (counts.add if added else counts.remove)(found)

    def _write(self, session: Session, published: list[Article], gone: list[str], afresh: bool = False) -> None:
        categories = dict(session.exec(select(Category.id, Category.slug).where(
            col(Category.id).in_({a.category_id for a in published if a.category_id}))).all())
        # Every summary first: one that cannot be written changes nothing of the index or its counts.
        summaries = {a.id: summary_head(ArticleSummary(
            slug=a.slug, title=a.title, category=categories.get(a.category_id or "") or None,
            visibility=a.visibility, locale=a.locale,  # type: ignore[arg-type]
            updated_at=a.updated_at.isoformat())) for a in published}  # type: ignore[arg-type]
        portals = set()
        kept = {} if afresh else dict(self._view[1])  # searches meanwhile read the one they started with
        for article_id in gone + [a.id for a in published if a.id in self._versions]:
            # What the index holds of it now: its words leave the vocabulary.
            old = kept.pop(article_id, None)
            if old is not None:
                self._count(old.portal, old.visibility, article_words(old.title, old.body), added=False)
            self._writer.delete_documents_by_term("id", article_id)
            portals.add(self._versions.pop(article_id)[0])
        for a in published:
            category, updated_at = categories.get(a.category_id or "", ""), a.updated_at.isoformat()
            self._writer.add_document(tantivy.Document(
                id=a.id, portal=a.portal, visibility=a.visibility,
                scope=[scope_term(a.portal, scope) for scope in READER_SCOPES if a.visibility in scope],
                category=category, slug=a.slug, locale=a.locale, updated_at=updated_at, title=a.title,
                body=a.body_text, version=a.version))
            kept[a.id] = Indexed(portal=a.portal, slug=a.slug, title=a.title, category=category or None,
                                 visibility=a.visibility, locale=a.locale, updated_at=updated_at, body=a.body_text,
                                 summary_json=summaries[a.id])
            self._count(a.portal, a.visibility, article_words(a.title, a.body_text), added=True)
            self._versions[a.id] = (a.portal, a.version)
            portals.add(a.portal)
        self._writer.commit()
        self.index.reload()
        vocabulary = dict(self._vocabulary)
        for portal in portals:
            for scope in READER_SCOPES:
                counts = self._counts.get((portal, scope))
                vocabulary[(portal, scope)] = counts.words() if counts else NO_WORDS
        self._view, self._vocabulary = (self.index.searcher(), kept), vocabulary

    # -- reading ----------------------------------------------------------------------------------

    def vocabulary(self, portal: str, visibilities: frozenset[str]) -> Words:
        """The words of the portal's published articles of these visibilities: a correction never hints
        at an article the reader may not see."""
        return self._vocabulary.get((portal, frozenset(visibilities)), NO_WORDS)

    def _scope(self, portal: str, visibilities: frozenset[str], category: str | None) -> tantivy.Query:
        term = tantivy.Query.term_query
        scope = term(self.schema, "scope", scope_term(portal, visibilities))
        if category is not None:
            scope = tantivy.Query.boolean_query([(tantivy.Occur.Must, scope),
                                                 (tantivy.Occur.Must, term(self.schema, "category", category))])
        return tantivy.Query.const_score_query(scope, 0.0)

    def _match(self, terms: list[str], known: Words) -> tuple[tantivy.Query, tantivy.Query]:
        """(the query ranking the articles, the query whose words the snippet highlights). Any of the words
        may match; the last one, when it is no known word, also as the start of one ("pass" finds
        "password": the reader may still be typing)."""
        # Words are letters and digits only (WORD): nothing in them is query syntax.
        exact = self.index.parse_query(" ".join(terms), ["title", "body"], field_boosts={"title": TITLE_BOOST})
        last = terms[-1]
        if last in known.frequency:
            return exact, exact
        pattern = re.escape(last) + ".*"
        prefix = tantivy.Query.const_score_query(tantivy.Query.boolean_query([
            (tantivy.Occur.Should, tantivy.Query.regex_query(self.schema, name, pattern)) for name in ("title", "body")
        ]), PREFIX_SCORE)
        return tantivy.Query.boolean_query([(tantivy.Occur.Should, exact), (tantivy.Occur.Should, prefix)]), exact

    def _snippet_prefixes(self, searcher: tantivy.Searcher, terms: list[str]) -> list[tuple[str, float]]:
        """What `snippet_window` looks for: each query word's stem as the start of a word (less its last
        letter where the stemmer may have changed it: "deliveri" of "delivery", "die" of "dying"), weighted as
        tantivy weighs it in a snippet (1 / (1 + articles holding it))."""
        prefixes = []
        for stem in dict.fromkeys(STEMS.analyze(" ".join(terms))):
            held = searcher.doc_freq("body", stem)
            if held:
                prefixes.append((stem[:-1] if stem[-1] in "eiy" and len(stem) > 2 else stem, 1 / (1 + held)))
        return prefixes

    def matches(self, *, portal: str, visibilities: frozenset[str], terms: list[str]) -> int:
        """How many articles `search` ranks for these terms (all pages)."""
        terms = [t for t in terms if WORD.fullmatch(t)]
        if not terms:
            return 0
        ranking, _ = self._match(terms, self.vocabulary(portal, visibilities))
        query = tantivy.Query.boolean_query([(tantivy.Occur.Must, ranking),
                                             (tantivy.Occur.Must, self._scope(portal, visibilities, None))])
        return self._view[0].search(query, 1, count=True).count

    def search(self, *, portal: str, visibilities: frozenset[str], terms: list[str], category: str | None,
               limit: int, offset: int) -> tuple[list[Hit], bool]:
        """The page [offset, offset + limit) of the portal's published articles of these visibilities (and
        category slug) matching any of `terms`, best first (BM25, title matches weighted TITLE_BOOST:1), and
        whether more follow. Snippets are made for that page only."""
        terms = [t for t in terms if WORD.fullmatch(t)]
        if not terms or limit <= 0:
            return [], False
        searcher, kept = self._view
        ranking, highlighted = self._match(terms, self.vocabulary(portal, visibilities))
        query = tantivy.Query.boolean_query([(tantivy.Occur.Must, ranking),
                                             (tantivy.Occur.Must, self._scope(portal, visibilities, category))])
        found = searcher.search(query, limit + 1, count=False, offset=offset).hits
        more = len(found) > limit
        found = found[:limit]
        if not found:
            return [], more
        snippets = tantivy.SnippetGenerator.create(searcher, highlighted, self.schema, "body")
        snippets.set_max_num_chars(SNIPPET_CHARS)
        prefixes = self._snippet_prefixes(searcher, terms)
        hits = []
        for _, address in found:
            article_id = searcher.doc(address).get_first("id")
            article = kept[article_id]
            body = article.body
            window = snippet_window(body, prefixes)
            snippet = snippets.snippet_from_doc(tantivy.Document(body=window)) if window is not None else None
            if snippet is None or not snippet.fragment():  # the window missed: the whole body, as it was
                snippet = snippets.snippet_from_doc(tantivy.Document(body=body))
            if snippet.fragment():
                shown = marked(snippet)
            else:  # a title-only match: the start of the body
                shown = html.escape(body[:SNIPPET_CHARS] + ("…" if len(body) > SNIPPET_CHARS else ""))
            hits.append(Hit(article_id, article, shown))
        return hits, more
