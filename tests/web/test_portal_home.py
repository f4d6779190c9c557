"""The portal's start page in a real browser."""

from playwright.async_api import expect

from tests.kit.browser import screenshots, serious_violations


async def test_home_shows_the_portal_and_a_way_to_get_help(demo, chromium) -> None:
    page = await chromium.page(demo.base_url)
    response = await page.goto("/portals/demo/")
    assert response is not None and response.status == 200
    assert "unsafe-inline" not in response.headers["content-security-policy"].split("style-src")[0]
    await expect(page.get_by_role("heading", name="How can we help?")).to_be_visible()
    await expect(page.get_by_role("link", name="Log in", exact=True)).to_be_visible()
    await expect(page.get_by_role("link", name="Start a conversation")).to_be_visible()
    assert await serious_violations(page) == []
    await screenshots(page, "home")


async def test_an_unknown_portal_is_a_page_that_says_so(demo, chromium) -> None:
    page = await chromium.page(demo.base_url)
    response = await page.goto("/portals/nope/")
    assert response is not None and response.status == 404
    await expect(page.get_by_role("heading", name="Not found")).to_be_visible()
