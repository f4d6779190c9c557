"""The agent's timeline in a real browser: an answer e-mailed to the customer that bounced shows, beside the
answer, that the customer did not get it and why; the customer is never told of it."""

from pathlib import Path

from playwright.async_api import expect

from tests.kit.browser import screenshots, serious_violations
from tests.kit.console import staff_browser
from tests.kit.mail import eventually, send_raw
from tests.kit.replies import PORTAL_ADDRESS, QUESTION, asked

# The mail corpus's Postfix delivery report (tests/integration/test_mail_corpus.py), for the answer's bounce address.
BOUNCE = Path(__file__).parents[1] / "fixtures" / "mail" / "44-postfix-dsn-rfc822.eml"


async def agent_timeline(demo, cid: str) -> list[dict]:  # type: ignore[no-untyped-def]
    return (await demo.agent.get(f"/api/v1/agent/conversations/{cid}")).json()["messages"]


async def test_a_bounced_answer_says_the_customer_did_not_get_it(demo, sink, chromium) -> None:
    cid, mail = await asked(demo, sink)
    raw = BOUNCE.read_bytes()
    bounce_address = sink.envelope_senders[str(mail["Message-ID"])]
    for key, value in {"REPLY_ADDRESS": str(mail["Reply-To"]), "ANSWER_MESSAGE_ID": str(mail["Message-ID"]),
                       "CONVERSATION_ID": cid, "PORTAL_ADDRESS": PORTAL_ADDRESS,
                       "BOUNCE_ADDRESS": bounce_address}.items():
        raw = raw.replace(f"{{{{{key}}}}}".encode(), value.encode())
    code, _ = await send_raw(demo.smtp_port, "", [bounce_address], raw)
    assert code == 250
    await eventually(lambda: _bounce_shown(demo, cid), timeout=20)

    page = await staff_browser(chromium, demo)
    await page.goto(f"/agent/conversations/{cid}")
    bounced = page.locator("#timeline .event.bounced")
    await expect(bounced).to_have_count(1)
    await expect(bounced).to_contain_text("Not delivered")
    await expect(bounced).to_contain_text("The customer did not get this e-mail:")
    await expect(bounced).to_contain_text("User unknown in virtual mailbox table")
    answer = page.locator("#timeline .message.from-agent", has_text=QUESTION)
    await bounced.get_by_role("link", name="See the message").click()
    await expect(page).to_have_url(f"{demo.base_url}/agent/conversations/{cid}#{await answer.get_attribute('id')}")
    assert await serious_violations(page) == []
    await screenshots(page, "agent-conversation-bounced")

    seen = (await demo.ana.get(f"/api/v1/portals/demo/conversations/{cid}")).json()["conversation"]
    assert "email_bounced" not in str(seen) and "User unknown" not in str(seen)


async def _bounce_shown(demo, cid: str) -> bool:  # type: ignore[no-untyped-def]
    return any(m.get("event") == "email_bounced" for m in await agent_timeline(demo, cid))
