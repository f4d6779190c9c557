"""Knowledge-base search through the gateway on a small corpus: relevance, typo tolerance, highlighted and
escaped snippets, category filter, pagination, and queries made of search-engine syntax."""

import pytest
from bs4 import BeautifulSoup

from tests.kit.conversations import Demo, make_demo

ADMIN_ARTICLES = "/api/v1/admin/portals/demo/kb/articles"
READ = "/api/v1/portals/demo/kb/articles"

# slug, category, title, body. Every body ends with the same sentence, so "support" finds them all.
CORPUS = [
    ("reset-your-password", "account", "Reset your password",
     "Forgot it? Request a **reset link** from the sign-in page. The link expires after 30 minutes."),
    ("change-your-e-mail-address", "account", "Change your e-mail address",
     "Open Settings, then Profile, and enter the new address. We send a confirmation message."),
    ("two-factor-authentication", "account", "Two-factor authentication",
     "Protect your account with a one-time code from an authenticator app."),
    ("close-your-account", "account", "Close your account",
     "We delete your data within 30 days after you close the account."),
    ("update-your-username", "account", "Update your username",
     "Pick a new username under Profile settings. Your old password stays valid."),
    ("download-an-invoice", "billing", "Download an invoice",
     "Every invoice is available as a PDF under Billing. We issue them monthly."),
    ("request-a-refund", "billing", "Request a refund",
     "Open the order and choose Refund. Refunds reach your card in 5 to 10 business days."),
    ("update-your-payment-method", "billing", "Update your payment method",
     "Add a new credit card or remove an old card under Billing, Payment methods."),
    ("vat-on-your-bill", "billing", "VAT on your bill",
     "Value added tax is shown on each bill, per country."),
    ("cancel-your-subscription", "billing", "Cancel your subscription",
     "Cancel at any time; the plan stays active until the end of the period. No money back for the "
     "current month."),
    ("track-your-shipment", "shipping", "Track your shipment",
     "Follow the tracking number in the dispatch e-mail to see where your parcel is."),
    ("delivery-times", "shipping", "Delivery times",
     "Standard delivery takes 3 to 5 days; express delivery ships the next day."),
    ("return-an-item", "shipping", "Return an item",
     "Print the return label and drop the parcel at any post office within 30 days."),
    ("damaged-parcel", "shipping", "Damaged parcel",
     "Take photos of the damage and write to us; we send a replacement."),
    ("international-orders", "shipping", "International orders",
     "We ship to 40 countries; customs fees are paid by the recipient."),
    ("formatting-replies", "account", "Formatting replies",
     "Type `<b>bold</b>` or `<script>x</script>` in a reply and it is shown as written; **bold** works."),
]
SUPPORT = " Need more help? Contact support."


@pytest.fixture
async def demo(settings, stack, gateway):  # type: ignore[no-untyped-def]
    demo = await make_demo(settings, gateway)
    for slug, category, title, body in CORPUS:
        response = await demo.admin.post(ADMIN_ARTICLES, json={
            "title": title, "body": body + SUPPORT, "category": category, "published": True})
        assert response.status_code == 201, response.text
        assert response.json()["article"]["slug"] == slug
    yield demo
    await demo.admin.aclose()


async def search(demo: Demo, q: str, **params: object) -> dict:
    async with demo.browser() as reader:
        response = await reader.get(READ, params={"q": q, **params})
    assert response.status_code == 200, (q, response.text)
    return response.json()


@pytest.mark.parametrize(("query", "first", "corrected"), [
    ("password reset", "reset-your-password", None),
    ("reset password", "reset-your-password", None),
    ("pasword reset", "reset-your-password", "password reset"),
    ("paswrod", "reset-your-password", "password"),
    ("invoce", "download-an-invoice", "invoice"),
    ("invoice", "download-an-invoice", None),
    ("refund", "request-a-refund", None),
    ("refunds", "request-a-refund", None),
    ("Refund", "request-a-refund", None),
    ("rufund", "request-a-refund", "refund"),
    ("parcel", "damaged-parcel", None),  # a title match outranks body-only matches
    ("subscription", "cancel-your-subscription", None),
    ("tracking shipment", "track-your-shipment", None),
])
async def test_the_right_article_ranks_first(demo, query, first, corrected):
    found = await search(demo, query)
    slugs = [a["slug"] for a in found["articles"]]
    assert slugs and slugs[0] == first, (query, slugs)
    assert found["corrected_query"] == corrected, (query, found["corrected_query"])


async def test_a_title_match_outranks_a_body_only_match(demo):
    # "parcel" is in one title and two bodies; "username" in one title and no other body; "password" is in
    # the title of one article and in the body of another.
    assert [a["slug"] for a in (await search(demo, "parcel"))["articles"]][0] == "damaged-parcel"
    assert {a["slug"] for a in (await search(demo, "parcel"))["articles"]} == {
        "damaged-parcel", "track-your-shipment", "return-an-item"}
    assert [a["slug"] for a in (await search(demo, "password"))["articles"]] == [
        "reset-your-password", "update-your-username"]


async def test_snippets_highlight_the_match_and_escape_everything_else(demo):
    found = (await search(demo, "refund"))["articles"][0]
    soup = BeautifulSoup(found["snippet"], "html.parser")
    assert {t.name for t in soup.find_all(True)} == {"mark"}
    assert all(m.get_text().lower().startswith("refund") for m in soup.find_all("mark"))

    code = await search(demo, "bold")
    assert [a["slug"] for a in code["articles"]] == ["formatting-replies"]
    snippet = code["articles"][0]["snippet"]
    soup = BeautifulSoup(snippet, "html.parser")
    assert {t.name for t in soup.find_all(True)} == {"mark"}, snippet  # no live <b>, no <script>
    assert [m.get_text().lower() for m in soup.find_all("mark")][:1] == ["bold"], snippet
    assert "<b>" not in snippet and "<script" not in snippet.lower()


async def test_a_snippet_shows_text_that_looks_like_markup_as_written(demo):
    """The article shows `<b>bold</b>` as code; its snippet must show that text too (escaped), not drop the
    parts that look like tags, and a word inside such text must be found."""
    snippet = (await search(demo, "bold"))["articles"][0]["snippet"]
    assert "&lt;b&gt;<mark>bold</mark>&lt;/b&gt;" in snippet, snippet
    assert "&lt;script&gt;x&lt;/script&gt;" in snippet, snippet
    assert "<b>bold</b>" in BeautifulSoup(snippet, "html.parser").get_text()
    # ... and the words inside it are searchable like any other text.
    script = await search(demo, "script")
    assert [a["slug"] for a in script["articles"]] == ["formatting-replies"]
    assert "&lt;<mark>script</mark>&gt;" in script["articles"][0]["snippet"]


async def test_corrected_query_only_when_a_word_was_corrected(demo):
    for query in ("password", "refund", "vat", "bill", "qzxv", "password qzxvw", "account"):
        assert (await search(demo, query))["corrected_query"] is None, query
    assert (await search(demo, "qzxv"))["articles"] == []
    assert (await search(demo, "delivery tmies"))["corrected_query"] == "delivery times"
    assert (await search(demo, "Pasword"))["corrected_query"] == "password"


async def test_category_filter(demo):
    async with demo.browser() as reader:
        billing = (await reader.get(READ, params={"category": "billing"})).json()
        assert {a["slug"] for a in billing["articles"]} == {s for s, c, _, _ in CORPUS if c == "billing"}
        assert all(a["category"] == "billing" for a in billing["articles"])
        none = (await reader.get(READ, params={"category": "no-such-category"})).json()
        assert none["articles"] == [] and none["next_cursor"] is None
    assert [a["slug"] for a in (await search(demo, "refund", category="billing"))["articles"]] == ["request-a-refund"]
    assert (await search(demo, "refund", category="shipping"))["articles"] == []
    assert {a["slug"] for a in (await search(demo, "support", category="shipping"))["articles"]} == {
        s for s, c, _, _ in CORPUS if c == "shipping"}


@pytest.mark.parametrize("q", ["support", None])
async def test_pagination_returns_every_hit_once(demo, q):
    seen: list[str] = []
    cursor = None
    async with demo.browser() as reader:
        for _ in range(20):
            params = {"limit": 4, **({"q": q} if q else {}), **({"cursor": cursor} if cursor else {})}
            page = (await reader.get(READ, params=params)).json()
            assert len(page["articles"]) <= 4
            seen += [a["slug"] for a in page["articles"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        bad = await reader.get(READ, params={"cursor": "not-a-cursor!", **({"q": q} if q else {})})
        assert bad.status_code == 422 and bad.json()["error"] == "invalid_request"
    assert sorted(seen) == sorted(s for s, _, _, _ in CORPUS), seen
    assert len(seen) == len(set(seen))


SYNTAX = ['"', '""', "*", "**", "OR", "AND", "NOT", "NEAR(", "NEAR(password reset, 2)", "-", "--", "-password",
          "password OR", "OR password", "password AND NOT reset", "pass*", "pass*word", '"password', 'password"',
          "title:password", "{title}: password", "^password", "(", ")", "()", "password)", "'", "''", "\\", "%",
          "_", "&", "|", "!", "!password", "password & reset", "password | reset", "<->", "password <-> reset",
          ":*", "password:*", "a", "!!!", "???", "...", "::", "+", "~password", "@@", "é", "über", "🙂",
          "²²", "NEAR", "near", "the", "a OR b", "* OR *", "x" * 200, "password " * 20]


async def test_queries_of_punctuation_or_search_syntax_never_error(demo):
    async with demo.browser() as reader:
        failures = []
        for q in SYNTAX:
            response = await reader.get(READ, params={"q": q})
            if response.status_code != 200 or "articles" not in response.json():
                failures.append((q, response.status_code, response.text[:200]))
            for category in ("billing",):
                response = await reader.get(READ, params={"q": q, "category": category, "limit": 1})
                if response.status_code != 200:
                    failures.append((q, category, response.status_code, response.text[:200]))
    assert failures == [], "\n".join(map(str, failures))
    assert (await search(demo, "NEAR(password reset, 2)"))["articles"][0]["slug"] == "reset-your-password"
    assert (await search(demo, '"password'))["articles"][0]["slug"] == "reset-your-password"
