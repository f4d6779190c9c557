"""Signing in to the customer portal in a real browser against a running Portico: the e-mail code (and its
wrong, expired, used-up and too-many-tries refusals, and the limit on new codes), custom sign-on through a
small company login page, continuing anonymously, staff sign-in, signing out; with JavaScript off and by
keyboard only. And at the HTTP level: a refused sign-in stores nothing, a cross-site post is refused."""

import json
import re
import time
from urllib.parse import urlencode

import httpx
import nats
from playwright.async_api import Page, expect
from sqlalchemy import text

from contracts.sessions import SESSION_COOKIE
from services.runtime.db import make_engine
from tests.kit.browser import checked, serious_violations
from tests.helpers import settled_counts, table_counts, wait_until
from tests.kit.sign_in import sign
from tests.kit.portal import code_for, set_portal

LOGIN = "/portals/demo/login"
NEXT = "/portals/demo/conversations"
VERIFY = "/api/v1/portals/demo/session/email/verify"
SERVICES = ("auth", "conversations", "notifications", "kb")


async def session_of(page: Page) -> dict:
    """`GET /api/v1/session` with the page's cookies: who the browser is signed in as ({} when nobody)."""
    answer = await page.request.get("/api/v1/session")
    return await answer.json() if answer.status == 200 else {}


async def ask_for_code(page: Page, address: str) -> None:
    await page.goto(f"{LOGIN}?{urlencode({'next': NEXT})}")
    await page.get_by_label("E-mail address").fill(address)
    await page.get_by_role("button", name="Continue", exact=True).click()
    await expect(page.get_by_role("heading", name="Check your e-mail")).to_be_visible()


# -- e-mail code ------------------------------------------------------------------------------------

async def test_sign_in_with_an_emailed_code_lands_on_next(demo, sink, chromium) -> None:
    page = await chromium.page(demo.base_url)
    await page.goto(f"{LOGIN}?next={NEXT}")
    await expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    email = page.get_by_label("E-mail address")
    assert await email.get_attribute("type") == "email" and await email.get_attribute("autocomplete") == "email"
    await expect(page.get_by_role("button", name="Continue anonymously")).to_be_visible()
    await expect(page.get_by_role("link", name="Staff sign-in")).to_be_visible()
    await expect(page.get_by_role("link", name="Sign in with your company account")).to_have_count(0)
    await checked(page, "login")

    await email.fill("Noor@Example.com")
    await page.get_by_role("button", name="Continue", exact=True).click()
    await expect(page).to_have_url(re.compile(r"/portals/demo/login/code\?next="))
    await expect(page.get_by_text("We sent a code to noor@example.com.")).to_be_visible()
    code_field = page.get_by_label("Code", exact=True)
    assert (await code_field.get_attribute("autocomplete"), await code_field.get_attribute("inputmode")) == \
        ("one-time-code", "numeric")
    await checked(page, "login-code")

    await code_field.fill(await code_for(sink, "noor@example.com"))
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await expect(page).to_have_url(f"{demo.base_url}{NEXT}")
    await expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    assert (await session_of(page))["method"] == "email"

    # Signed in, the login page says so and offers a way on and out.
    await page.goto(f"{LOGIN}?next={NEXT}")
    await expect(page.get_by_role("heading", name="You are signed in")).to_be_visible()
    await expect(page.get_by_text("You are signed in as noor@example.com.")).to_be_visible()
    await checked(page, "login-signed-in")
    await page.get_by_role("button", name="Sign out to use another account").click()
    await expect(page).to_have_url(f"{demo.base_url}/portals/demo/")
    await expect(page.get_by_role("link", name="Log in", exact=True)).to_be_visible()
    assert await session_of(page) == {}


async def test_an_address_that_is_not_one_is_refused_in_words(demo, sink, chromium) -> None:
    page = await chromium.page(demo.base_url)
    await page.goto(LOGIN)
    await page.get_by_label("E-mail address").fill("noor at example")
    await page.get_by_role("button", name="Continue", exact=True).click()
    message = "Please enter a valid e-mail address, like name@example.com."
    await expect(page.locator("#email-error")).to_have_text(message)
    await expect(page.get_by_label("E-mail address")).to_have_attribute("aria-invalid", "true")
    await expect(page.get_by_label("E-mail address")).to_have_value("noor at example")
    await expect(page.get_by_role("alert")).to_contain_text("There is a problem")
    await checked(page, "login-email-invalid")
    assert sink.messages == []


async def test_wrong_expired_and_used_up_codes_each_say_why(demo, sink, chromium) -> None:
    page = await chromium.page(demo.base_url)
    await ask_for_code(page, "omar@example.com")
    right = await code_for(sink, "omar@example.com")
    wrong = "000000" if right != "000000" else "111111"

    await page.get_by_label("Code", exact=True).fill(wrong)
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await expect(page.locator("#code-error")).to_have_text(
        "That code is not right. Check the code in the newest e-mail from us, or ask for a new one.")
    await expect(page.get_by_label("Code", exact=True)).to_have_attribute("aria-invalid", "true")
    assert "invalid_code" not in await page.content()
    assert (await session_of(page))["method"] == "email_unverified"  # no session opened
    await checked(page, "login-code-wrong")

    # Eleven minutes later the right code has expired.
    engine = make_engine(demo.settings.database_url("auth"))
    with engine.begin() as conn:
        conn.execute(text("UPDATE access_codes SET expires_at = :t"), {"t": "2000-01-01 00:00:00"})
    engine.dispose()
    await page.get_by_label("Code", exact=True).fill(right)
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await expect(page.locator("#code-error")).to_have_text("That code has expired. Please ask for a new one.")
    assert (await session_of(page))["method"] == "email_unverified"

    await page.get_by_role("button", name="Send a new code").click()
    await expect(page.get_by_role("status")).to_contain_text("We sent a new code to omar@example.com.")
    newest = await code_for(sink, "omar@example.com", after=1)
    wrong = "000000" if newest != "000000" else "111111"
    for _ in range(5):
        await page.get_by_label("Code", exact=True).fill(wrong)
        await page.get_by_role("button", name="Sign in", exact=True).click()
    await expect(page.locator("#code-error")).to_have_text(
        "That code was entered wrongly too many times and no longer works. Please ask for a new one.")
    await page.get_by_label("Code", exact=True).fill(newest)  # used up: the right one no longer works either
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await expect(page.locator("#code-error")).to_be_visible()
    assert (await session_of(page))["method"] == "email_unverified"


async def test_too_many_wrong_codes_say_when_to_try_again(demo, sink, chromium) -> None:
    page = await chromium.page(demo.base_url)
    await ask_for_code(page, "lena@example.com")
    right = await code_for(sink, "lena@example.com")
    # 30 wrong codes from this address (the browser's too), for other e-mails: the address must now wait.
    async with httpx.AsyncClient(base_url=demo.base_url) as guesser:
        for attempt in range(30):
            answer = await guesser.post(VERIFY, json={"email": f"guess{attempt}@example.com", "code": "123456"})
            assert answer.status_code == 401, answer.text
    await page.get_by_label("Code", exact=True).fill(right)
    response_status = []
    page.on("response", lambda r: response_status.append(r.status) if r.url.endswith("/login/code") else None)
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await expect(page.locator("#code-error")).to_contain_text("Too many tries. Please wait a little before trying again.")
    await expect(page.locator("#code-error")).to_contain_text(re.compile(r"Try again in \d+ minutes?\."))
    await expect(page.get_by_role("alert").locator("time")).to_have_count(0)  # the time is next to the field
    assert await page.locator(".field .retry time").get_attribute("datetime")
    assert 429 in response_status
    assert (await session_of(page))["method"] == "email_unverified"
    await checked(page, "login-code-too-many")


async def test_new_codes_are_limited_and_the_page_says_when_to_ask_again(demo, stack, sink, chromium) -> None:
    limits = stack["auth"].resources["limits"]
    window_start = time.time() // 900 * 900 + 1  # the limit counts in 15-minute windows: start one afresh
    limits.clock = lambda: window_start
    page = await chromium.page(demo.base_url)
    await ask_for_code(page, "kai@example.com")
    for sent in range(1, 5):  # 5 codes an address a window: the first and 4 new ones
        await page.get_by_role("button", name="Send a new code").click()
        await expect(page.get_by_role("status")).to_contain_text("We sent a new code")
        await wait_until(lambda: len(sink.to("kai@example.com")) == sent + 1)
    await page.get_by_role("button", name="Send a new code").click()
    await expect(page.locator("#resend-error")).to_contain_text("Try again in 15 minutes.")
    await expect(page.locator("form .retry")).to_contain_text("You can try again from")
    await expect(page.get_by_role("button", name="Send a new code")).to_be_disabled()
    await expect(page.get_by_label("Code", exact=True)).to_be_enabled()  # the codes sent still work
    assert len(sink.to("kai@example.com")) == 5
    await checked(page, "login-code-new-code-limit")


async def test_email_code_with_javascript_off(demo, sink, chromium) -> None:
    page = await chromium.page(demo.base_url, javascript=False)
    await ask_for_code(page, "ines@example.com")
    await page.get_by_label("Code", exact=True).fill("999999" if (await code_for(sink, "ines@example.com")) != "999999"
                                                    else "888888")
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await expect(page.locator("#code-error")).to_contain_text("That code is not right.")
    await page.get_by_label("Code", exact=True).fill(await code_for(sink, "ines@example.com"))
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await expect(page).to_have_url(f"{demo.base_url}{NEXT}")
    assert (await session_of(page))["email"] == "ines@example.com"
    await page.get_by_role("button", name="Sign out").click()
    await expect(page).to_have_url(f"{demo.base_url}/portals/demo/")
    assert await session_of(page) == {}


async def test_email_code_by_keyboard_only(demo, sink, chromium) -> None:
    page = await chromium.page(demo.base_url)
    await page.goto(f"{LOGIN}?next={NEXT}")
    for _ in range(20):  # Tab through the page's header to the e-mail field
        await page.keyboard.press("Tab")
        if await page.evaluate("document.activeElement.id") == "email":
            break
    assert await page.evaluate("document.activeElement.id") == "email"
    await page.keyboard.type("keys@example.com")
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name="Check your e-mail")).to_be_visible()
    await expect(page.get_by_label("Code", exact=True)).to_be_focused()
    await page.keyboard.type(await code_for(sink, "keys@example.com"))
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(f"{demo.base_url}{NEXT}")
    assert (await session_of(page))["email"] == "keys@example.com"


# -- custom sign-on -----------------------------------------------------------------------------------


async def test_custom_sign_on_through_the_company_login_page(demo, company, chromium) -> None:
    await set_portal(demo, custom_sign_on_enabled=True, custom_sign_on_redirect_uri=company)
    page = await chromium.page(demo.base_url)
    await page.goto(f"{LOGIN}?next={NEXT}")
    await expect(page.get_by_text("Then choose how to sign in.")).to_be_visible()
    await page.get_by_label("E-mail address").fill("riley@company.example")
    await page.get_by_role("button", name="Continue", exact=True).click()
    await expect(page.get_by_text("How would you like to sign in as riley@company.example?")).to_be_visible()
    await expect(page.get_by_role("button", name="E-mail me a sign-in code")).to_be_visible()
    await checked(page, "login-choose")

    await page.get_by_role("link", name="Sign in with your company account").click()
    await expect(page.get_by_role("heading", name="Company login")).to_be_visible()
    assert page.url.startswith(company)
    await page.get_by_role("button", name="Sign in as Riley").click()
    await expect(page).to_have_url(f"{demo.base_url}{NEXT}")
    await expect(page.locator(".who")).to_have_text("Riley Company")
    assert (await session_of(page))["method"] == "custom_sign_on"

    # Custom sign-on as the only method with a button: the login page goes straight to the company's page.
    await set_portal(demo, email_access_enabled=False, anonymous_enabled=False)
    async with httpx.AsyncClient(base_url=demo.base_url, headers={"Accept": "text/html"}) as probe:
        await wait_until(lambda: _redirects(probe), timeout=10)  # the gateway keeps a portal for 2 s
    await page.get_by_role("button", name="Sign out").click()
    await page.goto(f"{LOGIN}?next={NEXT}")
    await expect(page.get_by_role("heading", name="Company login")).to_be_visible()
    await page.get_by_role("button", name="Sign in as Riley").click()
    await expect(page).to_have_url(f"{demo.base_url}{NEXT}")


async def _redirects(probe: httpx.AsyncClient) -> bool:
    return (await probe.get(LOGIN)).status_code == 303


async def test_a_failed_return_from_the_company_is_a_page_in_words_for_a_browser(demo, company, chromium) -> None:
    await set_portal(demo, custom_sign_on_enabled=True, custom_sign_on_redirect_uri=company)
    page = await chromium.page(demo.base_url)
    token = sign(demo.secret, email="riley@company.example")
    response = await page.goto(f"{LOGIN}?{urlencode({'externalToken': token, 'trackingToken': 'made-up'})}")
    assert response is not None and response.status == 400
    await expect(page.get_by_role("alert")).to_contain_text(
        "This sign-in was started in another browser, or took too long. Please sign in again.")
    await expect(page.get_by_role("link", name="Try your company account again")).to_be_visible()
    assert await serious_violations(page) == []
    assert await session_of(page) == {}


# -- anonymous, staff, sign out -------------------------------------------------------------------------

async def test_continue_anonymously_then_sign_out(demo, chromium) -> None:
    await set_portal(demo, anonymous_enabled=True)
    page = await chromium.page(demo.base_url)
    await page.goto(f"{LOGIN}?next=/portals/demo/conversations/new")
    await page.get_by_role("button", name="Continue anonymously").click()
    await expect(page).to_have_url(f"{demo.base_url}/portals/demo/conversations/new")
    await expect(page.locator(".who")).to_have_text("Anonymous")
    assert (await session_of(page))["kind"] == "anonymous"
    await page.get_by_role("button", name="Sign out").click()
    await expect(page).to_have_url(f"{demo.base_url}/portals/demo/")
    assert await session_of(page) == {}


async def test_staff_sign_in_on_the_portal(demo, chromium) -> None:
    page = await chromium.page(demo.base_url)
    await page.goto(f"{LOGIN}?next=/portals/demo/kb")
    await page.get_by_role("link", name="Staff sign-in").click()
    await expect(page.get_by_role("heading", name="Staff sign-in")).to_be_visible()
    await checked(page, "login-staff")
    await page.get_by_label("E-mail address").fill("agent@example.com")
    await page.get_by_label("Password").fill("not-the-password")
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await expect(page.get_by_role("alert")).to_contain_text("The e-mail address or the password is not right.")
    await expect(page.get_by_label("E-mail address")).to_have_value("agent@example.com")
    await expect(page.get_by_label("Password")).to_have_value("")
    await checked(page, "login-staff-wrong")
    await page.get_by_label("Password").fill("a-long-staff-password")
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await expect(page).to_have_url(f"{demo.base_url}/portals/demo/kb")
    await expect(page.locator(".who .badge")).to_have_text("Staff")
    assert (await session_of(page))["role"] == "agent"


# -- at the HTTP level -------------------------------------------------------------------------------------

async def test_a_refused_sign_in_stores_nothing(demo, sink) -> None:
    urls = [demo.settings.database_url(s) for s in SERVICES]
    # A generous timeout: the first view of a portal sets up its theme, slow on a loaded machine.
    async with httpx.AsyncClient(base_url=demo.base_url, headers={"Accept": "text/html"}, timeout=30) as browser:
        assert (await browser.get(LOGIN)).status_code == 200  # the first view of a portal sets up its theme
        before = await settled_counts(urls)
        bad = await browser.post(LOGIN, data={"email": "not an address", "next": NEXT})
        assert bad.status_code == 422 and "Please enter a valid e-mail address" in bad.text
        assert SESSION_COOKIE not in bad.headers.get("set-cookie", "")
        assert await settled_counts(urls) == before and sink.messages == []

        asked = await browser.post(LOGIN, data={"email": "sam@example.com", "next": NEXT})
        assert asked.status_code == 303 and asked.headers["location"].startswith("/portals/demo/login/code")
        right = await code_for(sink, "sam@example.com")
        before = await settled_counts(urls)
        wrong = await browser.post(f"{LOGIN}/code", data={"code": "000000" if right != "000000" else "111111"})
        assert wrong.status_code == 401 and "That code is not right." in wrong.text
        assert SESSION_COOKIE not in wrong.headers.get("set-cookie", "")
        assert (await browser.get("/api/v1/session")).json()["method"] == "email_unverified"
        assert await settled_counts(urls) == before


async def test_a_cross_site_post_to_the_login_form_is_refused(demo, sink) -> None:
    auth = demo.settings.database_url("auth")
    before = table_counts(auth)
    async with httpx.AsyncClient(base_url=demo.base_url) as browser:
        for headers in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
            for path, data in ((LOGIN, {"email": "victim@example.com"}), (f"{LOGIN}/anonymous", {}),
                               (f"{LOGIN}/staff", {"email": "admin@example.com", "password": "x"})):
                refused = await browser.post(path, data=data, headers=headers)
                assert refused.status_code == 403 and refused.json()["error"] == "cross_site_request", path
                assert "set-cookie" not in refused.headers
    assert table_counts(auth) == before and sink.messages == []


async def test_signing_out_when_signed_out_goes_home(demo) -> None:
    async with httpx.AsyncClient(base_url=demo.base_url) as browser:
        out = await browser.post("/portals/demo/logout")
        assert out.status_code == 303 and out.headers["location"] == "/portals/demo/"
        ana_token = demo.ana.cookies[SESSION_COOKIE]
        out = await demo.ana.post("/portals/demo/logout")
        assert out.status_code == 303 and f'{SESSION_COOKIE}=""' in out.headers["set-cookie"]
        browser.cookies.set(SESSION_COOKIE, ana_token)
        assert (await browser.get("/api/v1/session")).status_code == 401  # ended for every gateway


async def test_the_login_route_keeps_json_errors_for_clients_that_do_not_ask_for_html(demo) -> None:
    async with httpx.AsyncClient(base_url=demo.base_url) as client:
        missing = await client.get("/portals/nope/login")
        assert missing.status_code == 404 and missing.json()["error"] == "unknown_portal"
        page = await client.get("/portals/nope/login", headers={"Accept": "text/html"})
        assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")


async def test_auth_says_why_a_code_failed_only_when_asked(demo, sink) -> None:
    """`say_why` (the pages) tells an expired code from a wrong one; without it (the JSON API), `invalid_code`."""
    async with httpx.AsyncClient(base_url=demo.base_url) as browser:
        assert (await browser.post("/api/v1/portals/demo/session/email", json={"email": "zoe@example.com"})
                ).status_code == 202
    code = await code_for(sink, "zoe@example.com")
    engine = make_engine(demo.settings.database_url("auth"))
    with engine.begin() as conn:
        conn.execute(text("UPDATE access_codes SET expires_at = :t"), {"t": "2000-01-01 00:00:00"})
    engine.dispose()
    client = await nats.connect(demo.settings.nats_url)
    try:
        answers = {}
        for say_why in (False, True):
            reply = await client.request("rpc.auth.verify_email_code", json.dumps(
                {"portal": "demo", "email": "zoe@example.com", "code": code, "say_why": say_why}).encode(), timeout=10)
            answers[say_why] = json.loads(reply.data)["error"]
    finally:
        await client.close()
    assert answers == {False: "invalid_code", True: "code_expired"}
