"""The knowledge base in the agent workspace, in a real browser: internal articles listed and marked beside the
public ones, the same typo-tolerant search as the portal's, an article page, and a portal chooser once the
organisation has several portals."""

import re

from playwright.async_api import expect

from tests.kit.browser import no_horizontal_scroll, screenshots, serious_violations
from tests.kit.console import staff_browser


async def write(demo, title: str, body: str, *, portal: str = "demo", category: str | None = None,  # type: ignore[no-untyped-def]
                visibility: str = "public") -> dict:
    response = await demo.admin.post(f"/api/v1/admin/portals/{portal}/kb/articles", json={
        "title": title, "body": body, "category": category, "visibility": visibility, "published": True})
    assert response.status_code == 201, response.text
    return response.json()["article"]


async def staff_articles(demo, portal: str = "demo") -> None:  # type: ignore[no-untyped-def]
    """Staff see internal articles where the portal is one "for agents" with an internal KB (as `make run` seeds)."""
    switched = await demo.admin.patch(f"/api/v1/admin/portals/{portal}/kb/settings",
                                      json={"portal_for_agents": True, "internal_kb": True})
    assert switched.status_code == 200, switched.text


async def test_agents_search_and_read_internal_articles_with_their_marker(demo, chromium) -> None:
    await write(demo, "Where is my invoice?", "Invoices are in **Billing → Invoices** as PDF.", category="billing")
    await write(demo, "Internal: issuing a goodwill credit",
                "Agents may credit up to 20 EUR without approval. Add an internal note with the reason.",
                category="billing", visibility="internal")
    await staff_articles(demo)

    page = await staff_browser(chromium, demo)
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Knowledge base").click()
    await expect(page).to_have_url(re.compile(r"/agent/kb"))
    results = page.locator("#kb-results .kb-result")
    await expect(results).to_have_count(2)
    internal = results.filter(has_text="Internal: issuing a goodwill credit")
    await expect(internal.locator(".badge.internal")).to_have_text("Internal")
    await expect(results.filter(has_text="Where is my invoice?").locator(".badge.internal")).to_have_count(0)
    await expect(page.get_by_label("Portal")).to_have_count(0)  # one portal: nothing to choose
    assert await serious_violations(page) == []
    await screenshots(page, "agent-kb")

    await page.get_by_label("Search the knowledge base").fill("goodwil credt")  # misspelled
    await page.get_by_role("button", name="Search").click()
    await expect(results).to_have_count(1)
    await expect(results.first.locator(".kb-snippet mark").first).to_be_visible()
    await results.first.get_by_role("link", name="Internal: issuing a goodwill credit").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Internal: issuing a goodwill credit")
    await expect(page.locator("#kb-internal")).to_have_text("Internal")
    await expect(page.get_by_text("Only staff see internal articles")).to_be_visible()
    await expect(page.locator("#kb-body")).to_contain_text("Agents may credit up to 20 EUR")
    assert await serious_violations(page) == []
    await page.set_viewport_size({"width": 375, "height": 740})
    assert await no_horizontal_scroll(page)
    await page.set_viewport_size({"width": 1280, "height": 800})
    await screenshots(page, "agent-kb-article")

    missing = await page.goto("/agent/kb/demo/no-such-article")
    assert missing is not None and missing.status == 404
    elsewhere = await page.goto("/agent/kb/not-our-portal/where-is-my-invoice")
    assert elsewhere is not None and elsewhere.status == 404


async def test_a_portal_chooser_when_the_organisation_has_several(demo, chromium) -> None:
    created = await demo.admin.post("/api/v1/admin/portals", json={"slug": "partners", "name": "Partner help"})
    assert created.status_code == 201, created.text
    await write(demo, "Reset your password", "Choose **Forgot password** on the sign-in page.")
    await write(demo, "Partner price list", "Prices for resellers, valid from January.", portal="partners",
                visibility="internal")
    await staff_articles(demo, "partners")

    page = await staff_browser(chromium, demo, javascript=False)
    await page.goto("/agent/kb")
    titles = page.locator("#kb-results .kb-title")
    chooser = page.get_by_label("Portal")
    await expect(chooser).to_have_value("demo")  # the first by name: "Demo …" before "Partner help"
    await expect(titles).to_have_text(["Reset your password"])
    await chooser.select_option(label="Partner help")
    await page.get_by_role("button", name="Show this portal").click()
    await expect(titles).to_have_text(["Partner price list"])
    await page.get_by_label("Search the knowledge base").fill("resellers")
    await page.get_by_role("button", name="Search").click()
    await expect(page).to_have_url(re.compile(r"portal=partners"))
    await expect(titles).to_have_text(["Partner price list"])
    await page.get_by_role("link", name="Partner price list").click()
    await expect(page.locator("#kb-internal")).to_have_text("Internal")
    await expect(page.get_by_role("navigation", name="Breadcrumb")).to_contain_text("Knowledge base: Partner help")
    await screenshots(page, "agent-kb-portals")
