"""Knowledge-base search benchmark: `GET /api/v1/portals/demo/kb/articles?q=...` over 10,000 articles.

Prints, from one run:
  * the first search after kb started (kb builds its search index and typo vocabulary before it serves),
    and the same query again;
  * searches per second and p50/p99 through the real gateway and the real kb service, at a fixed
    concurrency, with a rotating set of queries: correct words, misspellings ("pasword reset", "invocie"),
    several words; every answer is checked to have at least one hit, and before the load each query is
    checked once in full (status, a first hit about the query's topic, the expected typo correction);
    CPU per search in each process (kb, gateway, auth, nats-server, the load generator);
  * the same load while an editor changes an article every 0.25 s: each change refreshes kb's index and
    rebuilds the portal's typo vocabulary, which must never hold a search up;
  * beside it, in the same run: (a) a bare FastAPI GET endpoint answering a page of the same size, served by
    the same uvicorn config, under the same load; (b) the search query itself: kb's search index
    (`services.kb.search.SearchIndex`, tantivy) built in this process from the same database and queried in
    a loop for the ranked page with snippets, with the terms the service searched (after typo correction);
    and the ratios of Portico to each; (c) an article's change taken in by that index while another thread
    searches: the time of a refresh, and the searches' p99 and slowest beside the p99 without refreshes.

Everything runs as `make run` runs it: nats-server (sync_interval always), auth and kb as
`python -m services.<name>` processes, the gateway as `python -m services.gateway` (uvicorn, uvloop,
httptools, no access log). The bare endpoint is this file started with `--bare-server`, through the same
`uvicorn.run` call. The load generator is this process: a minimal keep-alive HTTP/1.1 client on uvloop, the
same for both sides. The articles are written in-process before kb starts, as `services/kb/seed.py` writes
the demo ones (`_apply` + `_published`: rendered Markdown, a revision, the event), 500 a
transaction; their text is generated (seeded, so every run searches the same corpus) from a vocabulary of a
few thousand words with Zipf frequencies, around fixed topics: password reset, invoice, refund, shipping, ...

    python bench/kb_search.py [--articles 10000] [--concurrency 8] [--seconds 15]
                              [--database-url postgresql://user:pw@host/postgres] [--profile]

`--profile` adds, after the measurement, `services.kb.reading._search` run in this process on the index of
(b): the time of each phase per query, and cProfile's top functions.
"""

import argparse
import asyncio
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

from harness import (CpuClock, Databases, Processes, keep_alive_load, percentile, quiet_logging,
                     request_bytes, run_in_temp_dir, running_nats, seed_auth, serve_like_gateway, start_portico,
                     wait_http, wait_outbox_drained)

BARE_GET = "/bare/kb/articles"


# -- the bare endpoint (a child process: `python bench/kb_search.py --bare-server PORT PAGE.json`) ---------

def serve_bare(port: int, page_file: str) -> None:
    """A trivial FastAPI app served exactly as `services/gateway/__main__.py` serves the gateway: the same query
    parameters, and a page of the same shape and size as the gateway's (a fixed one), through a response model."""
    from datetime import datetime

    from fastapi import FastAPI, Query
    from pydantic import BaseModel

    class Summary(BaseModel):
        slug: str
        title: str
        category: str | None
        visibility: str
        locale: str
        updated_at: datetime
        snippet: str | None = None

    class Page(BaseModel):
        articles: list[Summary]
        next_cursor: str | None
        corrected_query: str | None = None

    page = Page.model_validate_json(Path(page_file).read_text())
    app = FastAPI()

    @app.get(BARE_GET, response_model=Page)
    async def get(q: str | None = Query(default=None, max_length=200),
                  category: str | None = Query(default=None, max_length=100),
                  cursor: str | None = Query(default=None, max_length=200),
                  limit: int = Query(default=20, ge=1, le=100)) -> Page:
        return page

    serve_like_gateway(app, port)


if __name__ == "__main__" and len(sys.argv) == 4 and sys.argv[1] == "--bare-server":
    serve_bare(int(sys.argv[2]), sys.argv[3])
    sys.exit(0)


import httpx  # noqa: E402
from sqlmodel import Session, select  # noqa: E402

from contracts.envelope import new_id  # noqa: E402
from contracts.kb import ArticleInput, ListArticles, Reader  # noqa: E402
from services.kb import reading, search  # noqa: E402
from services.auth.seed import DEMO_ADMIN_EMAIL  # noqa: E402
from services.kb.articles import _apply, _published, now  # noqa: E402
from services.kb.domain import slugify  # noqa: E402
from services.kb.models import Article, KbPortal  # noqa: E402
from services.kb.portals import KnownPortal  # noqa: E402
from services.kb.seed import seed_demo as seed_kb_demo  # noqa: E402
from services.runtime.db import READ_ONLY, make_engine, session_scope  # noqa: E402
from services.runtime.migrations import upgrade  # noqa: E402
from services.runtime.nats import free_port  # noqa: E402
from tests.helpers import rows  # noqa: E402

PORTAL = "demo"
SEARCH_PATH = f"/api/v1/portals/{PORTAL}/kb/articles"
ADMIN_ARTICLES = f"/api/v1/admin/portals/{PORTAL}/kb/articles"
BENCH_ADMIN_PASSWORD = "bench-admin-password"  # what harness.seed_auth sets
EDIT_INTERVAL = 0.25  # seconds between an editor's changes during the load with edits
SEED_BATCH = 500
WARMUP_SECONDS = 1.5
NO_HITS = b'"articles":[]'  # how an empty page starts (FastAPI's compact JSON); checked against a real one


# -- the corpus --------------------------------------------------------------------------------------------

# Ranked roughly by frequency in support articles: Zipf weights follow this order, then the generated words.
COMMON = (
    "the to and you your a of in is for it on can this that be with we our if or are not from at as by an will "
    "when how what do my after before then all any more one only also so us have has need was it's there here "
    "which who where why they them their new same other some each every first next last up out into about over "
    "again back no yes just still may must should would could see get go make take give find keep let")
DOMAIN = (
    "account settings page open choose select click sign email address link card payment order customer support "
    "team business day days hours minutes week month year confirm update change old button menu profile billing "
    "plan price tax amount copy download pdf file phone app mobile web browser device code message status time "
    "delivery package carrier tracking number store return item product credit bank transfer receipt company "
    "name country region currency date request form contact help problem error issue fix check try later within "
    "working free cost costs fee international domestic express standard arrive arrives arrival sent send "
    "receive received shown show list view edit save delete remove cancel use used user users admin role access "
    "permission security login logout history details information data import report summary total monthly "
    "annual discount coupon voucher gift balance charge charged twice wrong missing late early full partial "
    "approve approved pending processed process step steps guide question answer agent chat call ticket "
    "warehouse parcel label customs duty invoice invoices refund refunds shipping shipped password passwords "
    "reset subscription subscriptions renewal renew upgrade downgrade trial method methods tracked courier "
    "verification verify authenticator factor authentication token key keys api export exported backup archive "
    "deletion deleted close closed reopen owner member members invite invited workspace organisation "
    "notification notifications preferences language timezone currency vat number reference statement expired "
    "expires valid invalid limit limits quota usage seats license licence renewal contract terms policy legal "
    "privacy cookies consent region europe worldwide countries tracking-number weekend holiday morning evening "
    "support-team instructions reply replies forwarded spam folder inbox sender domain dns record records "
    "integration webhook webhooks endpoint sandbox production secret rotate rotated revoke revoked scope scopes")
SYLLABLES = ("ba be bi bo bu ca ce co cu da de di do du fa fe fi fo ga ge go ha he hi ho ka ke ki ko la le li "
             "lo lu ma me mi mo mu na ne ni no nu pa pe pi po pu ra re ri ro ru sa se si so su ta te ti to tu "
             "va ve vi vo za ze zo bra cre dri fla glo pla pri sta stri tro vel mar ton ler son dex lin ner").split()


@dataclass(frozen=True)
class Topic:
    word: str  # in every article of the topic's title or body, and in the answers to its queries
    category: str
    titles: tuple[str, ...]
    phrases: tuple[str, ...]


TOPICS = (
    Topic("password", "account",
          ("Reset your password", "How to reset a forgotten password", "The password reset link has expired",
           "Change your password in {x}", "Password reset e-mail not arriving", "Password rules for {x} accounts"),
          ("reset your password", "the password reset link", "choose a new password", "password reset",
           "how do I reset my password")),
    Topic("invoice", "billing",
          ("Where is my invoice?", "Download an invoice as PDF", "The invoice shows the wrong address",
           "Invoices for {x} orders", "Correct the company name on an invoice", "Invoice numbers explained"),
          ("your invoice", "download the invoice pdf", "the monthly invoice", "the invoice number",
           "where is my invoice")),
    Topic("refund", "billing",
          ("Refunds: how long do they take?", "Request a refund for {x}", "Refund to a credit card",
           "A partial refund, explained", "Refund status: pending", "When will my refund arrive?"),
          ("the refund", "a refund to your credit card", "the refund status", "a partial refund",
           "when will my refund arrive")),
    Topic("shipping", "shipping",
          ("Shipping costs and delivery time", "International shipping to {x}", "Express shipping options",
           "Change the shipping address after ordering", "Free shipping: the rules", "Shipping to {x} stores"),
          ("shipping costs", "international shipping", "the shipping address", "the delivery time",
           "express shipping")),
    Topic("authentication", "security",
          ("Set up two-factor authentication", "Lost your authenticator app?", "Two-factor authentication for {x}"),
          ("two-factor authentication", "the authenticator app", "a verification code")),
    Topic("subscription", "billing",
          ("Cancel your subscription", "Upgrade your subscription plan", "Subscription renewal dates"),
          ("your subscription plan", "cancel the subscription", "the renewal date")),
    Topic("payment", "billing",
          ("Update your payment method", "Payment declined by {x}", "Pay by bank transfer"),
          ("the payment method", "a declined payment", "pay by bank transfer")),
    Topic("tracking", "shipping",
          ("Track your order", "The tracking number does not work", "Tracking parcels from {x}"),
          ("the tracking number", "track your order", "the courier tracking page")),
    Topic("export", "account",
          ("Export your data", "Data export formats", "Export {x} reports"),
          ("export your data", "the data export", "a backup archive")),
    Topic("api", "developers",
          ("Create an API key", "Rotate a leaked API key", "API limits for {x}"),
          ("an api key", "rotate the api key", "the api endpoint")),
)

# (query, topic word its answers must mention, the corrected query the service must answer with)
QUERIES: tuple[tuple[str, str, str | None], ...] = (
    ("password reset", "password", None),
    ("pasword reset", "password", "password reset"),
    ("invoice", "invoice", None),
    ("invocie", "invoice", "invoice"),
    ("refund", "refund", None),
    ("refnud", "refund", "refund"),
    ("shipping", "shipping", None),
    ("shiping costs", "shipping", "shipping costs"),
    ("how do I reset my password", "password", None),
    ("where is my invoice", "invoice", None),
    ("refund to my credit card", "refund", None),
    ("international shipping delivery time", "shipping", None),
    ("invoise pdf download", "invoice", "invoice pdf download"),
    ("pasword reset link expired", "password", "password reset link expired"),
)
FIRST_QUERY = "pasword reset"


class Corpus:
    """Seeded generator of support articles: Zipf-distributed words around one topic per article."""

    def __init__(self, vocabulary: int, seed: int = 20240601) -> None:
        from rapidfuzz import fuzz

        self.rng = random.Random(seed)
        words = list(dict.fromkeys(COMMON.split() + DOMAIN.split()))
        # The misspellings must stay unknown, and must stay closest to the word they misspell.
        misspelt = {w for q, _, c in QUERIES if c for w in search.words(q)} - {w for q, _, c in QUERIES if c
                                                                                for w in search.words(c)}
        known = set(words)
        while len(words) < vocabulary:
            word = "".join(self.rng.choice(SYLLABLES) for _ in range(self.rng.choice((2, 2, 3, 3, 3, 4))))
            if word in known or any(fuzz.ratio(word, m) >= 60 for m in misspelt):
                continue
            known.add(word)
            words.append(word)
        self.words = words
        weights = [1 / (rank + 1) for rank in range(len(words))]
        total, running = sum(weights), 0.0
        self.cumulative = []
        for weight in weights:
            running += weight / total
            self.cumulative.append(running)

    def sentence(self, phrase: str | None) -> str:
        words = self.rng.choices(self.words, cum_weights=self.cumulative, k=self.rng.randint(6, 16))
        if phrase:
            words.insert(self.rng.randint(0, len(words)), phrase)
        if self.rng.random() < 0.1:
            at = self.rng.randrange(len(words))
            words[at] = f"**{words[at]}**"
        text = " ".join(words)
        return text[0].upper() + text[1:] + self.rng.choice(".....?!")

    def article(self) -> tuple[str, str, str, str]:
        """(title, category, visibility, Markdown body)."""
        rng = self.rng
        topic = rng.choice(TOPICS)
        filler = rng.choice(self.words[150:])
        title = rng.choice(topic.titles).format(x=filler.capitalize())
        paragraphs = []
        for p in range(rng.randint(2, 5)):
            sentences = []
            for s in range(rng.randint(2, 5)):
                phrase = None
                if (p == 0 and s == 0) or rng.random() < 0.25:
                    phrase = rng.choice(topic.phrases)
                elif rng.random() < 0.08:
                    phrase = rng.choice(rng.choice(TOPICS).phrases)
                sentences.append(self.sentence(phrase))
            paragraphs.append(" ".join(sentences))
        if rng.random() < 0.4:
            steps = [self.sentence(rng.choice(topic.phrases) if rng.random() < 0.3 else None) for _ in range(3)]
            paragraphs.insert(rng.randint(1, len(paragraphs)), "\n".join(f"{i}. {s}" for i, s in enumerate(steps, 1)))
        return title, topic.category, "internal" if rng.random() < 0.05 else "public", "\n\n".join(paragraphs)


def seed_articles(kb_db: str, *, org_id: str, kb_id: str, n: int, vocabulary: int) -> tuple[float, int]:
    """The demo knowledge base (`services/kb/seed.py`), then `n` generated articles written the same way,
    published, 500 a transaction; (seconds, words in the generated vocabulary)."""
    corpus = Corpus(vocabulary)
    engine = make_engine(kb_db)
    started = time.perf_counter()
    try:
        with session_scope(engine) as session:
            seed_kb_demo(session, portal=PORTAL, org_id=org_id, kb_id=kb_id)
        for offset in range(0, n, SEED_BATCH):
            with session_scope(engine) as session:
                for i in range(offset, min(offset + SEED_BATCH, n)):
                    title, category, visibility, body = corpus.article()
                    at = now()
                    article = Article(id=new_id(), portal=PORTAL, slug=f"{slugify(title)[:70]}-{i}", title="", body="",
                                      body_html="", body_text="", visibility=visibility, status="published",
                                      locale="en", version=0, created_at=at, updated_at=at, published_at=at)
                    _apply(session, article, ArticleInput(title=title, body=body, visibility=visibility,  # type: ignore[arg-type]
                                                          category=category), "seed")
                    _published(session, org_id, article)
    finally:
        engine.dispose()
    return time.perf_counter() - started, len(corpus.words)


# -- the search query itself, in this process ------------------------------------------------------------

class RawSearch:
    """The search index kb holds (`services.kb.search.SearchIndex`), built in this process from the same
    database, queried directly: the ranked page with its snippets, and nothing else (no NATS, no HTTP, no
    reader, no typo correction)."""

    def __init__(self, db_url: str) -> None:
        engine = make_engine(db_url)
        try:
            self.index = search.SearchIndex()
            with Session(engine.execution_options(**READ_ONLY)) as session:
                t0 = time.perf_counter()
                self.indexed = self.index.rebuild(session)
                self.build_seconds = time.perf_counter() - t0
        finally:
            engine.dispose()

    def matches(self, terms: list[str]) -> int:
        """Articles the query matches, before the page is cut (what ranking goes through)."""
        return self.index.matches(portal=PORTAL, visibilities=frozenset({"public"}), terms=terms)

    def run(self, terms: list[str]) -> list[search.Hit]:
        """The first page (20 articles, as the service's default), snippets included."""
        return self.index.search(portal=PORTAL, visibilities=frozenset({"public"}), terms=terms, category=None,
                                 limit=20, offset=0)[0]


def raw_loop(raw: RawSearch, term_lists: list[list[str]], seconds: float) -> tuple[float, list[tuple[int, float]]]:
    latencies: list[tuple[int, float]] = []
    deadline = time.perf_counter() + seconds
    started = time.perf_counter()
    i = 0
    while time.perf_counter() < deadline:
        index = i % len(term_lists)
        t0 = time.perf_counter()
        found = raw.run(term_lists[index])
        latencies.append((index, (time.perf_counter() - t0) * 1000))
        if not found:
            raise AssertionError(f"raw search for {term_lists[index]} found nothing")
        i += 1
    return len(latencies) / (time.perf_counter() - started), latencies


def refresh_beside_searches(kb_db: str, raw: RawSearch, term_lists: list[list[str]], edits: int) -> dict[str, float]:
    """An article's change taken in by the index (commit + the portal's typo vocabulary rebuilt), `edits`
    times, while another thread searches without pause: how long a refresh takes, and the slowest search
    and the p99 during them beside the p99 without them (a refresh must never hold a search up)."""
    import threading

    engine = make_engine(kb_db)
    with Session(engine.execution_options(**READ_ONLY)) as session:
        some = session.exec(select(Article.id).where(Article.portal == PORTAL, Article.status == "published")
                            .limit(edits)).all()
    latencies: list[float] = []
    stop = threading.Event()

    def searching() -> None:
        i = 0
        while not stop.is_set():
            t0 = time.perf_counter()
            raw.run(term_lists[i % len(term_lists)])
            latencies.append((time.perf_counter() - t0) * 1000)
            i += 1

    quiet_rate, quiet = raw_loop(raw, term_lists, 2.0)
    searcher = threading.Thread(target=searching)
    searcher.start()
    refreshes = []
    try:
        for article_id in some:
            raw.index._versions[article_id] = (PORTAL, -1)  # as if it had changed: reindexed, vocabulary rebuilt
            with Session(engine.execution_options(**READ_ONLY)) as session:
                t0 = time.perf_counter()
                raw.index.refresh(session, [article_id])
                refreshes.append((time.perf_counter() - t0) * 1000)
    finally:
        stop.set()
        searcher.join()
        engine.dispose()
    return {"refresh_ms": statistics.median(refreshes), "refreshes": len(refreshes), "searches": len(latencies),
            "max_ms": max(latencies), "p99_ms": percentile(latencies, 0.99),
            "quiet_p99_ms": percentile([ms for _, ms in quiet], 0.99)}


# -- profile: `services.kb.reading._search` in this process --------------------------------------------------

def profile_search(kb_db: str, raw: RawSearch, rounds: int) -> str:
    """`reading._search` per query with timers around its phases (the same calls), then cProfile over all;
    as text."""
    import cProfile
    import io
    import pstats

    engine = make_engine(kb_db)
    with Session(engine.execution_options(**READ_ONLY)) as session:
        found = session.get(KbPortal, PORTAL)
        assert found is not None
        row = KnownPortal.of(found)  # as kb keeps it in memory
    engine.dispose()
    index = raw.index
    requests = [ListArticles(reader=Reader(kind="anonymous"), portal=PORTAL, q=q, limit=20) for q, _, _ in QUERIES]
    spent: dict[str, float] = {}

    def timed(name: str, fn: Callable[..., object]) -> Callable[..., object]:
        def call(*args: object, **kwargs: object) -> object:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[name] = spent.get(name, 0.0) + (time.perf_counter() - t0) * 1000
        return call

    lines = [f"profile: services.kb.reading._search in this process on an index of the same database "
             f"({raw.indexed:,} articles, built in {raw.build_seconds:.1f} s), nothing else running",
             f"per query, median of {rounds} calls, ms: _search | typo correction | index search + snippets | "
             "the rest (page)"]
    originals = (search.correct, index.search)
    search.correct = timed("correct", search.correct)  # type: ignore[assignment]
    index.search = timed("search", index.search)  # type: ignore[method-assign]
    try:
        for request in requests:
            samples = []
            for _ in range(rounds):
                spent.clear()
                t0 = time.perf_counter()
                reading._search(index, request, row)
                total = (time.perf_counter() - t0) * 1000
                samples.append((total, spent.get("correct", 0.0), spent.get("search", 0.0)))
            total, fixing, found = (statistics.median(s[i] for s in samples) for i in range(3))
            rest = statistics.median(t - c - f for t, c, f in samples)
            lines.append(f"  {request.q!r:40} {total:8.3f} | {fixing:6.3f} | {found:8.3f} | {rest:6.3f}")
    finally:
        search.correct = originals[0]  # type: ignore[assignment]
        del index.search  # back to the class's method
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(rounds):
        for request in requests:
            reading._search(index, request, row)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(15)
    lines.append(f"cProfile, {rounds} x {len(requests)} queries, top 15 by own time:")
    lines += [line for line in out.getvalue().splitlines()[4:] if line.strip()]
    return "\n".join(lines)


# -- the run -----------------------------------------------------------------------------------------------

async def run(args: argparse.Namespace, work: Path) -> dict[str, object]:
    result: dict[str, object] = {}
    with (Databases(work, args.database_url) as dbs, running_nats(work, "always") as nats_server,
          Processes(work) as processes):
        auth_db, kb_db = dbs.url("auth"), dbs.url("kb")
        portal = seed_auth(auth_db)
        upgrade("kb", kb_db)
        result["seed_seconds"], result["vocabulary"] = seed_articles(kb_db, org_id=portal.org_id, kb_id=portal.kb_id,
                                                                     n=args.articles, vocabulary=args.vocabulary)
        result["published"] = rows(kb_db, "SELECT count(*) FROM articles WHERE status = 'published'")[0][0]
        result["public"] = rows(kb_db, "SELECT count(*) FROM articles WHERE status = 'published' "
                                       "AND visibility = 'public'")[0][0]

        gateway_port, env = await start_portico(processes, work, nats_server.url, {"auth": auth_db, "kb": kb_db})
        result["drain_seconds"] = await wait_outbox_drained(kb_db, "kb", processes, timeout=180)

        raw: RawSearch | None = None
        try:
            # The first search after kb started (it built its search index and typo vocabulary before serving).
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway_port}", timeout=60) as gateway:
                timings = []
                for _ in range(2):
                    started = time.perf_counter()
                    response = await gateway.get(SEARCH_PATH, params={"q": FIRST_QUERY})
                    timings.append((time.perf_counter() - started) * 1000)
                    assert response.status_code == 200 and response.json()["articles"], response.text[:300]
                result["first_ms"], result["second_ms"] = timings

                # Each query once, in full: a topical first hit, the expected correction; the terms searched.
                raw = RawSearch(kb_db)
                result["index_build_seconds"] = raw.build_seconds
                firsts = []
                term_lists, matches, sizes = [], [], []
                sample: bytes = b""
                for q, topic, corrected in QUERIES:
                    response = await gateway.get(SEARCH_PATH, params={"q": q})
                    assert response.status_code == 200, response.text[:300]
                    page = response.json()
                    assert page["articles"], f"{q!r}: no hits"
                    first = page["articles"][0]
                    assert topic in (first["title"] + " " + (first["snippet"] or "")).lower(), \
                        f"{q!r}: first hit {first}"
                    assert page["corrected_query"] == corrected, f"{q!r}: corrected to {page['corrected_query']!r}"
                    firsts.append(first["title"])
                    assert NO_HITS not in response.content
                    terms = corrected.split() if corrected else search.words(q)[:search.MAX_TERMS]
                    assert raw.run(terms), f"{q!r}: the raw query finds nothing"
                    term_lists.append(terms)
                    matches.append(raw.matches(terms))
                    sizes.append(len(response.content))
                    if q == QUERIES[0][0]:
                        sample = response.content
                empty = await gateway.get(SEARCH_PATH, params={"q": "zzqxv"})
                # The check below works:
                assert empty.status_code == 200 and NO_HITS in empty.content, empty.text[:300]
            bare_port = free_port()
            page_file = work / "bare-page.json"
            page_file.write_bytes(sample)
            processes.start("bare", [str(Path(__file__).resolve()), "--bare-server", str(bare_port), str(page_file)],
                            env)
            await wait_http(bare_port, BARE_GET, processes)

            def has_hits(index: int, body: bytes) -> None:
                if NO_HITS in body:
                    raise AssertionError(f"{QUERIES[index][0]!r}: no hits during the load")

            paths = [f"{SEARCH_PATH}?{urlencode({'q': q})}" for q, _, _ in QUERIES]
            bare_requests = [request_bytes("GET", bare_port, f"{BARE_GET}?{urlencode({'q': q})}")
                             for q, _, _ in QUERIES]
            portico_requests = [request_bytes("GET", gateway_port, path) for path in paths]

            # 1. Bare endpoint, then Portico, the same load.
            await keep_alive_load(bare_port, bare_requests, args.concurrency, seconds=WARMUP_SECONDS, check=has_hits)
            bare_rate, bare_lat = await keep_alive_load(bare_port, bare_requests, args.concurrency,
                                                        seconds=args.seconds, check=has_hits)
            await keep_alive_load(gateway_port, portico_requests, args.concurrency, seconds=WARMUP_SECONDS,
                                  check=has_hits)
            nats_pid = nats_server.process.pid  # type: ignore[union-attr]
            cpu = CpuClock({**processes.pids(leave_out="bare"), "nats-server": nats_pid, "load generator": os.getpid()})
            rate, portico_lat = await keep_alive_load(gateway_port, portico_requests, args.concurrency,
                                                      seconds=args.seconds, check=has_hits)
            result["cpu_per_search"] = {name: spent * 1000 / len(portico_lat) for name, spent in cpu.spent().items()}
            processes.check()

            # 2. The same load while an editor changes an article every EDIT_INTERVAL s (each change: the index
            #    commit and the portal's typo vocabulary rebuilt in kb, beside the searches).
            edits_done: list[float] = []
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway_port}", timeout=60) as editor:
                signed_in = await editor.post("/api/v1/staff/session", json={"email": DEMO_ADMIN_EMAIL,
                                                                             "password": BENCH_ADMIN_PASSWORD})
                assert signed_in.status_code == 200, signed_in.text[:300]
                slug = (await editor.get(SEARCH_PATH, params={"q": "refund"})).json()["articles"][0]["slug"]

                async def edit_now_and_then() -> None:
                    n = 0
                    while True:
                        await asyncio.sleep(EDIT_INTERVAL)
                        n += 1
                        t0 = time.perf_counter()
                        edited = await editor.patch(f"{ADMIN_ARTICLES}/{slug}",
                                                    json={"body": f"Refund edit {n}: the refund reaches your card."})
                        assert edited.status_code == 200, edited.text[:300]
                        edits_done.append((time.perf_counter() - t0) * 1000)

                editing = asyncio.create_task(edit_now_and_then())
                try:
                    _, edit_lat = await keep_alive_load(gateway_port, portico_requests, args.concurrency,
                                                        seconds=max(args.seconds / 2, 1.0), check=has_hits)
                finally:
                    editing.cancel()
                    await asyncio.gather(editing, return_exceptions=True)
            result["edits"] = {"edits": len(edits_done), "edit_ms": statistics.median(edits_done or [0.0]),
                               "p50_ms": statistics.median([ms for _, ms in edit_lat]),
                               "p99_ms": percentile([ms for _, ms in edit_lat], 0.99)}
            processes.check()

            # 3. The search query itself (the index kb holds), in a loop in this process.
            raw.run(term_lists[0])
            raw_rate, raw_lat = raw_loop(raw, term_lists, args.seconds)
            result["refresh"] = refresh_beside_searches(kb_db, raw, term_lists, edits=20)

            result.update(bare_rate=bare_rate, bare_lat=[ms for _, ms in bare_lat], rate=rate,
                          lat=[ms for _, ms in portico_lat], raw_rate=raw_rate, raw_lat=[ms for _, ms in raw_lat],
                          per_query=[(q, terms, n, size,
                                      statistics.median([ms for i, ms in portico_lat if i == k] or [0.0]),
                                      statistics.median([ms for i, ms in raw_lat if i == k] or [0.0]))
                                     for k, ((q, _, _), terms, n, size) in enumerate(zip(QUERIES, term_lists, matches,
                                                                                         sizes, strict=True))],
                          firsts=firsts, bare_size=len(sample),
                          database="PostgreSQL" if args.database_url else "SQLite")
            if args.profile:
                processes.stop()  # the profile runs alone on the machine
                result["profile"] = profile_search(kb_db, raw, args.profile_rounds)
        finally:
            raw = None
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--articles", type=int, default=10_000, help="generated articles (default 10000)")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight (default 8)")
    parser.add_argument("--seconds", type=float, default=15.0,
                        help="measured time of each side: bare, Portico, raw query (default 15)")
    parser.add_argument("--database-url", help="PostgreSQL server URL: fresh databases are created and dropped")
    parser.add_argument("--vocabulary", type=int, default=3000, help="words the articles are written from")
    parser.add_argument("--profile", action="store_true", help="then profile services.kb.reading._list in-process")
    parser.add_argument("--profile-rounds", type=int, default=20, help="rounds of all queries when profiling")
    args = parser.parse_args()
    quiet_logging()
    started = time.monotonic()
    r = run_in_temp_dir(lambda work: run(args, work), use_uvloop=True)

    lat, bare_lat, raw_lat = r["lat"], r["bare_lat"], r["raw_lat"]
    p50, p99 = statistics.median(lat), percentile(lat, 0.99)
    bare_p50, bare_p99 = statistics.median(bare_lat), percentile(bare_lat, 0.99)
    raw_p50, raw_p99 = statistics.median(raw_lat), percentile(raw_lat, 0.99)
    print(f"{r['database']}, nats-server sync_interval=always; gateway, auth and kb as processes "
          f"(uvicorn uvloop/httptools, no access log); load generator: one process, keep-alive HTTP/1.1; "
          f"{os.cpu_count()} CPUs")
    print(f"knowledge base: {r['published']:,} published articles ({r['public']:,} public; {args.articles:,} "
          f"generated from {r['vocabulary']:,} words + the 5 demo ones), seeded in {r['seed_seconds']:.1f} s, "
          f"events relayed in {r['drain_seconds']:.1f} s")
    print(f"search index (tantivy, in memory) built from the database in {r['index_build_seconds']:.1f} s (in this "
          f"process; kb builds its own at start); first search after kb started ({FIRST_QUERY!r}): "
          f"{r['first_ms']:.1f} ms; the same again: {r['second_ms']:.1f} ms")
    print(f"load: {args.concurrency} in flight, {args.seconds:g} s per side after {WARMUP_SECONDS:g} s warm-up, "
          f"{len(QUERIES)} queries in rotation, every answer checked for at least one hit")
    print(f"bare FastAPI GET (same page, {r['bare_size']:,} B):   {r['bare_rate']:9,.0f} req/s   "
          f"p50 {bare_p50:7.2f} ms  p99 {bare_p99:7.2f} ms   ({len(bare_lat):,} requests)")
    print(f"Portico search (anonymous reader):      {r['rate']:9,.0f} req/s   "
          f"p50 {p50:7.2f} ms  p99 {p99:7.2f} ms   ({len(lat):,} requests)")
    print(f"search query alone (index, in-process):{r['raw_rate']:9,.0f} q/s     "
          f"p50 {raw_p50:7.2f} ms  p99 {raw_p99:7.2f} ms   ({len(raw_lat):,} queries, one at a time)")
    edits, refresh = r["edits"], r["refresh"]
    assert isinstance(edits, dict) and isinstance(refresh, dict)
    print(f"Portico search while an article changes every {EDIT_INTERVAL:g} s: p50 {edits['p50_ms']:7.2f} ms  "
          f"p99 {edits['p99_ms']:7.2f} ms   ({edits['edits']} edits, each answered in {edits['edit_ms']:.1f} ms "
          f"median, index and typo vocabulary refreshed before the answer)")
    print(f"an article's change taken in by the index (commit + typo vocabulary rebuilt): {refresh['refresh_ms']:.1f} "
          f"ms median of {refresh['refreshes']}; searches in another thread meanwhile: {refresh['searches']:,}, "
          f"p99 {refresh['p99_ms']:.2f} ms, slowest {refresh['max_ms']:.2f} ms (p99 without refreshes "
          f"{refresh['quiet_p99_ms']:.2f} ms)")
    print(f"ratio Portico / bare GET:              {r['rate'] / r['bare_rate']:9.4f}")
    print(f"ratio Portico / raw search query:      {r['rate'] / r['raw_rate']:9.4f}   "
          f"(Portico {args.concurrency} in flight, raw one at a time; p50 latency raw / Portico: {raw_p50 / p50:.4f})")
    cpu = r["cpu_per_search"]
    assert isinstance(cpu, dict)
    if any(cpu.values()):
        print("CPU per search: " + ", ".join(f"{name} {ms:.2f} ms" for name, ms in cpu.items())
              + (" (PostgreSQL's own processes not counted)" if args.database_url else ""))
    print("per query: searched as | median ms through Portico under load (queueing included) | raw query alone "
          "| articles the index matches | answer bytes | first hit (checked: about the query's topic)")
    for (q, terms, n, size, portico_ms, raw_ms), first in zip(r["per_query"], r["firsts"], strict=True):  # type: ignore[call-overload]
        print(f"  {q!r:40} -> {' '.join(terms)!r:40} {portico_ms:8.2f} | {raw_ms:7.2f} | {n:6,} | {size:6,} | "
              f"{first}")
    if "profile" in r:
        print(r["profile"])
    print(f"total time {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
