"""The staff console in a real browser: staff members signed in through the `/agent/login` page."""

import re

from playwright.async_api import Page, expect

STAFF_PASSWORD = "a-long-staff-password"


async def sign_in_staff(page: Page, email: str, password: str = STAFF_PASSWORD, next_path: str = "") -> None:
    """Sign in with the staff sign-in form (the account exists: `demo.staff(email, role)` creates one)."""
    await page.goto("/agent/login" + (f"?next={next_path}" if next_path else ""))
    await page.get_by_label("E-mail").fill(email)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page).not_to_have_url(re.compile(r"/agent/login"))


async def staff_browser(chromium, demo, email: str = "agent@example.com", role: str | None = None,  # type: ignore[no-untyped-def]
                        **options: object) -> Page:
    """A new browser page signed in as `email`; with `role`, the account is created first."""
    if role is not None:
        await demo.staff(email, role)
    page = await chromium.page(demo.base_url, **options)
    await sign_in_staff(page, email)
    return page


DEMO_ADMIN, DEMO_ADMIN_PASSWORD = "admin@example.com", "a-long-admin-password"  # seeded by tests.kit.seeding


async def admin_browser(chromium, demo, next_path: str = "/admin/", **options: object) -> Page:  # type: ignore[no-untyped-def]
    """A new browser page signed in as the demo org's admin through the staff sign-in page, on `next_path`."""
    page = await chromium.page(demo.base_url, **options)
    await sign_in_staff(page, DEMO_ADMIN, DEMO_ADMIN_PASSWORD, next_path=next_path)
    return page


async def browser_with_cookies(chromium, demo, client) -> Page:  # type: ignore[no-untyped-def]
    """A new browser page with the session of an httpx `client` (a customer's, an agent's)."""
    page = await chromium.page(demo.base_url)
    await page.context.add_cookies([{"name": name, "value": value, "url": demo.base_url}
                                    for name, value in client.cookies.items()])
    return page
