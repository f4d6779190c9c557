"""The admin console's operations page in a real browser against a running Portico: each service's status and
the event consumers' backlog; a notification that failed while the mail server refused mail, tried again from
the page once it is back, and sent; a bounced e-mail; a dead-lettered event of the organisation (and never
another organisation's); with JavaScript off too; only admins may open it."""

import re
from pathlib import Path

import nats
from playwright.async_api import Page, expect

from contracts.envelope import EventEnvelope, new_id
from contracts.events import UserRegistered
from services.runtime.backlog import dead_letters
from tests.kit.browser import no_horizontal_scroll, screenshots, serious_violations
from tests.kit.console import sign_in_staff
from tests.kit.conversations import start
from tests.kit.email import answer
from tests.kit.mail import eventually, send_raw
from tests.kit.replies import PORTAL_ADDRESS, asked

NOTIFICATIONS = "/api/v1/admin/notifications"
# The bounce below is the mail corpus's Postfix delivery report (tests/integration/test_mail_corpus.py).
BOUNCE = Path(__file__).parents[1] / "fixtures" / "mail" / "44-postfix-dsn-rfc822.eml"


async def checked(page: Page, name: str) -> None:
    assert await serious_violations(page) == []
    await page.set_viewport_size({"width": 375, "height": 740})
    assert await no_horizontal_scroll(page)
    await page.set_viewport_size({"width": 1280, "height": 800})
    await screenshots(page, name)


async def admin_page(chromium, demo, **options: object) -> Page:  # type: ignore[no-untyped-def]
    await demo.staff("boss@example.com", "admin")
    page = await chromium.page(demo.base_url, **options)
    await sign_in_staff(page, "boss@example.com", next_path="/admin/operations")
    await expect(page).to_have_url(re.compile(r"/admin/operations$"))
    return page


async def failed_notifications(demo) -> list[dict]:  # type: ignore[no-untyped-def]
    response = await demo.admin.get(NOTIFICATIONS, params={"status": "failed"})
    assert response.status_code == 200, response.text
    return response.json()["notifications"]


async def test_services_and_a_failed_notification_tried_again_once_the_mail_server_is_back(demo, sink, chromium):
    page = await admin_page(chromium, demo)
    await expect(page.get_by_role("heading", level=1)).to_have_text("Operations")
    for service in ("auth", "conversations", "notifications", "kb"):
        row = page.locator(f"#service-{service}")
        await expect(row.get_by_text("Ready")).to_be_visible()
        await expect(row.locator("td").nth(1)).to_have_text("Answers")
    await expect(page.locator("#consumer-backlog tbody tr").first).to_be_visible()
    await expect(page.locator("#failed-none")).to_have_text("No failed notifications.")
    await expect(page.locator("#dead-letters-none")).to_have_text("No dead-lettered events.")
    await checked(page, "admin-operations")

    sink.fail = True
    cid = (await start(demo.ana, subject="Where is my parcel?"))["id"]
    await answer(demo, cid, "It left our warehouse today.")
    [failed] = await eventually(lambda: failed_notifications(demo), timeout=30)
    assert failed["recipient"] == "ana@example.com" and failed["attempts"] >= 1

    await page.reload()
    item = page.locator(f"#notification-{failed['id']}")
    await expect(item).to_contain_text("E-mail to ana@example.com")
    await expect(item.get_by_role("link", name=cid)).to_have_attribute("href", f"/agent/conversations/{cid}")
    await expect(item.locator(".ops-error")).not_to_be_empty()
    await expect(page.locator("nav.on-this-page")).to_contain_text("Failed notifications 1")
    await checked(page, "admin-operations-failed")

    # The mail server still refuses: the notification goes back to its tries, and fails again after the last.
    await item.get_by_role("button", name="Try again").click()
    await expect(page.locator("#operations-notice")).to_have_text(
        "The notification is queued and will be tried again shortly.")
    await eventually(lambda: failed_notifications(demo), timeout=30)

    sink.fail = False
    await page.reload()
    await page.locator(f"#notification-{failed['id']}").get_by_role("button", name="Try again").click()
    await expect(page.locator("#operations-notice")).to_have_text("The notification was sent.")
    await expect(page.locator("#failed-none")).to_be_visible()
    [mail] = sink.to("ana@example.com")
    assert "It left our warehouse today." in mail.get_body(preferencelist=("plain",)).get_content()
    assert await failed_notifications(demo) == []


def poison(org_id: str) -> EventEnvelope:
    """A `UserRegistered` of the organisation whose data no consumer can read: dead-lettered at once."""
    user_id = new_id()
    return EventEnvelope(id=new_id(), type="UserRegistered", version=1, occurred_at="2026-01-01T00:00:00Z",
                         org_id=org_id, aggregate_id=user_id, aggregate_version=1, correlation_id="test",
                         causation_id=None, data={"user_id": user_id})


async def publish(nats_url: str, envelope: EventEnvelope) -> None:
    nc = await nats.connect(nats_url)
    try:
        await nc.jetstream().publish(UserRegistered.subject(), envelope.model_dump_json().encode(),
                                     headers={"Nats-Msg-Id": envelope.id})
    finally:
        await nc.close()


async def dead_lettered(nats_url: str) -> set[str]:
    """Ids of the events on the dead-letter stream."""
    nc = await nats.connect(nats_url)
    try:
        return {letter.event_id for letter in await dead_letters(nc.jetstream(), 1000)}
    finally:
        await nc.close()


async def test_a_dead_lettered_event_and_a_bounced_email_are_listed_without_javascript(demo, sink, chromium):
    org_id = (await demo.admin.get("/api/v1/admin/portals/demo")).json()["org_id"]
    ours, theirs = poison(org_id), poison("01ANOTHERORGANISATION00000")
    await publish(demo.settings.nats_url, ours)
    await publish(demo.settings.nats_url, theirs)
    # The consumers of `UserRegistered` give up on both at once.
    await eventually(lambda: _both_dead(demo, {ours.id, theirs.id}), timeout=20)

    # A bounce of an answer (the corpus's Postfix report, sent to the answer's bounce address).
    cid, mail = await asked(demo, sink)
    raw = BOUNCE.read_bytes()
    bounce_address = sink.envelope_senders[str(mail["Message-ID"])]
    for key, value in {"REPLY_ADDRESS": str(mail["Reply-To"]), "ANSWER_MESSAGE_ID": str(mail["Message-ID"]),
                       "CONVERSATION_ID": cid, "PORTAL_ADDRESS": PORTAL_ADDRESS,
                       "BOUNCE_ADDRESS": bounce_address}.items():
        raw = raw.replace(f"{{{{{key}}}}}".encode(), value.encode())
    code, _ = await send_raw(demo.smtp_port, "", [bounce_address], raw)
    assert code == 250
    await eventually(lambda: _bounced(demo), timeout=20)

    page = await admin_page(chromium, demo, javascript=False)
    letters = page.locator("#dead-letter-list > li")
    await expect(letters.first).to_contain_text(ours.id)
    await expect(letters.first).to_contain_text("UserRegistered")
    await expect(letters.first).to_contain_text("payload does not match UserRegistered")
    await expect(page.locator("#dead-letters")).not_to_contain_text(theirs.id)
    bounced = page.locator("#bounced-list > li")
    await expect(bounced).to_have_count(1)
    await expect(bounced.first).to_contain_text("E-mail to ana@example.com")
    await expect(bounced.first).to_contain_text("User unknown in virtual mailbox table")
    await expect(bounced.first.get_by_role("button")).to_have_count(0)
    await screenshots(page, "admin-operations-dead-letters")
    other = await chromium.page(demo.base_url)
    await other.context.add_cookies(await page.context.cookies())
    await other.goto("/admin/operations#dead-letters")
    assert await serious_violations(other) == []


async def _both_dead(demo, ids: set[str]) -> bool:  # type: ignore[no-untyped-def]
    return ids <= await dead_lettered(demo.settings.nats_url)


async def _bounced(demo) -> list[dict]:  # type: ignore[no-untyped-def]
    response = await demo.admin.get(NOTIFICATIONS, params={"status": "bounced"})
    return response.json()["notifications"]


async def test_only_admins_open_operations_and_see_their_own_organisations_notifications(demo, chromium):
    for email, role in (("writer@example.com", "content_manager"), ("agent@example.com", None)):
        if role:
            await demo.staff(email, role)
        page = await chromium.page(demo.base_url)
        await sign_in_staff(page, email, next_path="/admin/operations")
        response = await page.goto("/admin/operations")
        assert response is not None and response.status == 403
        await expect(page.get_by_role("heading", level=1)).to_have_text("No access")
        posted = await page.request.post(f"/admin/operations/notifications/{new_id()}/retry",
                                         headers={"Origin": demo.base_url})
        assert posted.status == 403
    # The JSON API the page calls: admins only; another organisation's notification is not found.
    assert (await demo.agent.get(NOTIFICATIONS)).status_code == 403
    missing = await demo.admin.post(f"{NOTIFICATIONS}/{new_id()}/retry")
    assert missing.status_code == 404
