"""The portal's rules hold for e-mail as for the portal (real SMTP, real NATS, real databases):
what a reply to a closed conversation does under each reopen policy, the portal's limits, that a
refused e-mail makes no account anywhere, which e-mails Portico marks as automatic, and who an API
key's answer shows as its author."""


import pytest

from tests.fixtures.files import REFUSED, sample
from tests.helpers import count, rows, settled_counts
from tests.kit.conversations import API_KEY, closed_days_ago, start
from tests.kit.mail import eventually, send_mail, send_raw
from tests.kit.replies import PORTAL_ADDRESS, asked, email_messages, new_mail, stored_files
from tests.kit.email import answer, demo, reply_to, settings, sink  # noqa: F401

SERVICES = ("auth", "conversations", "notifications", "kb")


async def closed_after_answer(demo, sink):  # type: ignore[no-untyped-def]
    cid, mail = await asked(demo, sink)
    assert (await demo.agent.post(f"/api/v1/agent/conversations/{cid}/close")).status_code == 200
    return cid, mail


async def agent_detail(demo, cid: str) -> dict:  # type: ignore[no-untyped-def]
    response = await demo.agent.get(f"/api/v1/agent/conversations/{cid}")
    assert response.status_code == 200, response.text
    return response.json()


async def landed(demo, email_message_id: str) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    db = demo.settings.database_url("conversations")
    [(cid, message_id)] = await eventually(lambda: rows(
        db, "SELECT conversation_id, message_id FROM inbound_receipts WHERE external_message_id = :m",
        m=email_message_id))
    return cid, message_id


# -- a reply to a closed conversation: one rule for every channel ---------------------------------------

async def test_a_reply_reopens_a_closed_conversation_where_the_policy_allows(demo, sink):
    cid, mail = await closed_after_answer(demo, sink)
    reply = reply_to(mail, "It broke again.")
    assert (await send_mail(demo.smtp_port, reply, [str(mail["Reply-To"])]))[0] == 250

    assert (await landed(demo, str(reply["Message-ID"])))[0] == cid
    detail = await agent_detail(demo, cid)
    assert detail["conversation"]["status"] == "open"
    assert [m["event"] for m in detail["messages"] if m["kind"] == "event"][-1] == "reopened"


POLICIES = {
    "reopening turned off": ({"reopen_enabled": False}, 0),
    "new_conversation policy": ({"reopen_policy": "new_conversation"}, 0),
    "within_days, window passed": ({"reopen_policy": "within_days", "reopen_within_days": 3}, 5),
}


@pytest.mark.parametrize("policy", POLICIES)
async def test_a_reply_the_policy_does_not_let_reopen_starts_a_linked_conversation(demo, sink, policy):
    values, days_ago = POLICIES[policy]
    await demo.settings_(**values)
    cid, mail = await closed_after_answer(demo, sink)
    if days_ago:
        closed_days_ago(demo, cid, days_ago)
    reply = reply_to(mail, "It broke again.")
    assert (await send_mail(demo.smtp_port, reply, [str(mail["Reply-To"])]))[0] == 250

    follow_up, message_id = await landed(demo, str(reply["Message-ID"]))
    assert follow_up != cid
    new = await agent_detail(demo, follow_up)
    assert new["conversation"]["linked_from"] == cid and new["conversation"]["status"] == "open"
    assert new["conversation"]["channel"] == "email"
    assert [m["body"] for m in new["messages"] if m["kind"] == "message"] == ["It broke again."]
    assert (await agent_detail(demo, cid))["conversation"]["status"] == "closed"  # nothing reopened
    # The customer sees both in My Conversations.
    listed = {c["id"]: c["status"] for c in
              (await demo.ana.get("/api/v1/portals/demo/conversations")).json()["conversations"]}
    assert listed == {cid: "closed", follow_up: "open"}


async def test_an_out_of_office_reply_neither_posts_nor_reopens(demo, sink):
    cid, mail = await closed_after_answer(demo, sink)
    vacation = reply_to(mail, "I am out of the office until Monday.")
    vacation["X-Autoreply"] = "yes"
    vacation["Precedence"] = "auto_reply"
    assert (await send_mail(demo.smtp_port, vacation, [str(mail["Reply-To"])]))[0] == 250

    await demo.settings_(reopen_policy="new_conversation")  # the sentinel below must not reopen either
    sentinel = reply_to(mail, "A real reply.")
    assert (await send_mail(demo.smtp_port, sentinel, [str(mail["Reply-To"])]))[0] == 250
    await landed(demo, str(sentinel["Message-ID"]))
    assert count(demo.settings.database_url("conversations"), "inbound_receipts",
                 "external_message_id = :m", m=str(vacation["Message-ID"])) == 0
    detail = await agent_detail(demo, cid)
    assert detail["conversation"]["status"] == "closed"
    assert all("out of the office" not in (m["body"] or "") for m in detail["messages"])


# -- the portal's limits ----------------------------------------------------------------------------------

async def test_a_reply_over_the_portals_character_limit_is_refused_with_the_limit_and_stores_nothing(demo, sink):
    await demo.settings_(max_body_chars=300)
    cid, mail = await asked(demo, sink)
    urls = [demo.settings.database_url(s) for s in SERVICES]
    before = (await settled_counts(urls), await stored_files(demo))
    code, reason = await send_mail(demo.smtp_port, reply_to(mail, "x" * 301), [str(mail["Reply-To"])])
    assert code == 552 and "301" in reason and "300" in reason, (code, reason)
    assert (await settled_counts(urls), await stored_files(demo)) == before

    fits = reply_to(mail, "y" * 300)
    assert (await send_mail(demo.smtp_port, fits, [str(mail["Reply-To"])]))[0] == 250
    [message] = await eventually(lambda: email_messages(demo.ana, cid))
    assert message["body"] == "y" * 300


async def test_files_over_the_portals_file_limits_are_dropped_and_named(demo, sink):
    await demo.settings_(max_files=1)
    cid, mail = await asked(demo, sink)
    reply = reply_to(mail, "Two photos.")
    reply.add_attachment(sample("png"), maintype="image", subtype="png", filename="one.png")
    reply.add_attachment(sample("png"), maintype="image", subtype="png", filename="two.png")
    assert (await send_mail(demo.smtp_port, reply, [str(mail["Reply-To"])]))[0] == 250
    [message] = await eventually(lambda: email_messages(demo.ana, cid))
    assert [a["filename"] for a in message["attachments"]] == ["one.png"]
    assert message["body"] == ('Two photos.\n\nFiles not attached:\n'
                               '- "two.png" was not attached: at most 1 files are allowed.')


async def test_a_refused_file_is_dropped_with_its_reason_and_the_rest_lands(demo, sink):
    cid, mail = await asked(demo, sink)
    reply = reply_to(mail, "See the invoice.")
    reply.add_attachment(sample("png"), maintype="image", subtype="png", filename="photo.png")
    executable = next(data for name, data, _ in REFUSED if name == "pe-renamed.pdf")
    reply.add_attachment(executable, maintype="application", subtype="pdf", filename="invoice.pdf")
    assert (await send_mail(demo.smtp_port, reply, [str(mail["Reply-To"])]))[0] == 250

    [message] = await eventually(lambda: email_messages(demo.ana, cid))
    assert [a["filename"] for a in message["attachments"]] == ["photo.png"]
    assert message["body"] == ('See the invoice.\n\nFiles not attached:\n'
                               '- "invoice.pdf" is not an allowed file type (an executable program).')
    assert await stored_files(demo) == {a["id"] for a in message["attachments"]}


# -- a refused e-mail makes no account anywhere -------------------------------------------------------

async def test_a_refused_email_from_a_new_sender_leaves_no_account_in_any_service(demo, sink):
    await demo.settings_(max_body_chars=50)
    urls = [demo.settings.database_url(s) for s in SERVICES]
    before = await settled_counts(urls)
    too_long = new_mail("Nora New <nora.new@example.com>", "Help", "z" * 51, "<nora-1@mail.example.com>")
    assert (await send_mail(demo.smtp_port, too_long, [PORTAL_ADDRESS]))[0] == 552
    only_a_bad_file = new_mail("Olga New <olga.new@example.com>", "Help", "", "<olga-1@mail.example.com>")
    only_a_bad_file.clear_content()
    executable = next(data for name, data, _ in REFUSED if name == "pe-renamed.pdf")
    only_a_bad_file.add_attachment(executable, maintype="application", subtype="pdf", filename="setup.pdf")
    code, reason = await send_mail(demo.smtp_port, only_a_bad_file, [PORTAL_ADDRESS])
    assert code == 550 and "not an allowed file type" in reason, (code, reason)

    assert await settled_counts(urls) == before
    assert count(demo.settings.database_url("auth"), "users", "email LIKE '%new@example.com'") == 0
    assert count(demo.settings.database_url("conversations"), "customers", "email LIKE '%new@example.com'") == 0

    accepted = new_mail("Nora New <nora.new@example.com>", "Help", "Short now.", "<nora-2@mail.example.com>")
    assert (await send_mail(demo.smtp_port, accepted, [PORTAL_ADDRESS]))[0] == 250
    await landed(demo, "<nora-2@mail.example.com>")
    assert count(demo.settings.database_url("auth"), "users", "email = 'nora.new@example.com'") == 1


# -- what Portico marks as automatic, and who an answer is from -----------------------------------------

async def test_a_persons_answer_is_not_marked_automatic_but_an_access_code_is(demo, sink):
    cid, mail = await asked(demo, sink)
    assert "Auto-Submitted" not in mail
    requested = await demo.browser().post("/api/v1/portals/demo/session/email", json={"email": "ana@example.com"})
    assert requested.status_code in (200, 202), requested.text
    code_mail = (await eventually(lambda: [m for m in sink.to("ana@example.com") if m["Message-ID"] !=
                                           mail["Message-ID"]]))[0]
    assert code_mail["Auto-Submitted"] == "auto-generated"


async def test_an_answer_written_with_an_api_key_shows_the_keys_name(demo, sink):
    created = await demo.admin.post("/api/v1/admin/api-keys", json={"name": "Helpdesk bot", "role": "org.admin"})
    assert created.status_code == 201, created.text
    bot = demo.browser()
    bot.headers["Authorization"] = f"Bearer {created.json()['key']}"
    cid = (await start(demo.ana))["id"]
    posted = await bot.post(f"/api/v1/agent/conversations/{cid}/messages", json={"body": "Done."})
    assert posted.status_code == 201, posted.text
    assert posted.json()["message"]["author_name"] == "Helpdesk bot"
    seen = (await demo.ana.get(f"/api/v1/portals/demo/conversations/{cid}")).json()["conversation"]["messages"]
    assert [m["author_name"] for m in seen if m["author_kind"] == "agent"] == ["Helpdesk bot"]
    await bot.aclose()
    assert API_KEY  # the demo's bootstrap key is an org.admin key too


@pytest.mark.parametrize("spelling", ["ANA@Example.COM", "\uff21na@example.com"])
async def test_a_reply_from_another_spelling_of_the_customers_address_is_hers(demo, sink, spelling):
    cid, mail = await asked(demo, sink)
    raw = (f"From: Ana <{spelling}>\r\nTo: {mail['Reply-To']}\r\nSubject: Re: {mail['Subject']}\r\n"
           f"Message-ID: <spelling-{abs(hash(spelling))}@mail.example.com>\r\nMIME-Version: 1.0\r\n"
           "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
           "Same person, other spelling.\r\n").encode()
    assert (await send_raw(demo.smtp_port, "ana@example.com", [str(mail["Reply-To"])], raw))[0] == 250
    [message] = await eventually(lambda: email_messages(demo.ana, cid))
    assert message["body"] == "Same person, other spelling." and message["author_kind"] == "customer"
