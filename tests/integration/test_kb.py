"""The knowledge base through the gateway: write, publish, read, search, and the portal's config."""

import pytest

from tests.kit.conversations import make_demo

ARTICLES = "/api/v1/admin/portals/demo/kb/articles"


@pytest.fixture
async def demo(settings, stack, gateway):  # type: ignore[no-untyped-def]
    demo = await make_demo(settings, gateway)
    yield demo
    await demo.admin.aclose()


async def write(demo, title: str, body: str, **extra: object) -> dict:  # type: ignore[no-untyped-def]
    response = await demo.admin.post(ARTICLES, json={"title": title, "body": body, "published": True, **extra})
    assert response.status_code == 201, response.text
    return response.json()["article"]


async def test_publish_read_and_search_with_a_typo(demo):
    reset = await write(demo, "Reset your password", "Forgot your **password**? Use the reset link.",
                        category="account")
    await write(demo, "Invoices", "Find your invoices under Billing.")
    assert reset["slug"] == "reset-your-password" and "<strong>password</strong>" in reset["body_html"]
    reader = demo.browser()
    listed = (await reader.get("/api/v1/portals/demo/kb/articles")).json()
    assert {a["slug"] for a in listed["articles"]} == {"reset-your-password", "invoices"}
    found = (await reader.get("/api/v1/portals/demo/kb/articles", params={"q": "pasword reset"})).json()
    assert found["articles"][0]["slug"] == "reset-your-password"
    assert found["corrected_query"] == "password reset"
    assert "<mark>" in found["articles"][0]["snippet"]
    one = await reader.get("/api/v1/portals/demo/kb/articles/reset-your-password")
    assert one.status_code == 200 and "reset link" in one.json()["article"]["body_html"]
    config = await reader.get("/api/v1/portals/demo/config")
    assert config.status_code == 200 and config.json()["kb_id"] and "sso" in config.json()["sign_in_methods"]
    assert config.headers["cache-control"].startswith("public")
    again = await reader.get("/api/v1/portals/demo/config", headers={"If-None-Match": config.headers["etag"]})
    assert again.status_code == 304
    await reader.aclose()
