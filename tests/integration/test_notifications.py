"""Agent answers reach the customer by e-mail over real SMTP, once, threaded; e-mail replies come back in."""

from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import pytest
from sqlalchemy import text

from contracts.events import NotificationSent
from services.notifications.outbound import UNKNOWN_OUTCOME
from services.runtime.db import make_engine
from services.runtime.settings import Settings
from tests.conftest import make_settings
from tests.helpers import count, rows
from tests.kit.conversations import make_demo, start
from tests.kit.mail import Sink, eventually, send_mail
from tests.kit.streams import stream_events
from tests.kit.email import answer, demo, reply_to, settings, sink  # noqa: F401


async def test_an_agent_answer_is_one_threaded_email_with_a_signed_reply_address(demo, sink):
    cid = (await start(demo.ana, subject="Invoice is wrong"))["id"]
    await answer(demo, cid, "We fixed the invoice.")
    await answer(demo, cid, "internal: customer is VIP", internal=True)
    await answer(demo, cid, "Anything else?")
    mails = await eventually(lambda: len(sink.to("ana@example.com")) >= 2 and sink.to("ana@example.com"))
    first, second = mails[0], mails[1]
    assert first["Subject"] == f"Re: Invoice is wrong [#{cid}]"
    assert first["Reply-To"].startswith("reply+") and first["Reply-To"].endswith("@reply.localhost")
    assert first["Message-ID"] and second["In-Reply-To"] == first["Message-ID"]
    assert first["Message-ID"] in second["References"]
    plain = first.get_body(preferencelist=("plain",)).get_content()
    html = first.get_body(preferencelist=("html",)).get_content()
    assert "We fixed the invoice." in plain and "We fixed the invoice." in html
    assert f"/portals/demo/conversations/{cid}" in plain and "Demo support" in plain
    every = b"".join(bytes(m) for m in sink.messages)
    assert b"VIP" not in every  # the note reached no one
    await eventually(lambda: _sent_events(demo, 2))


async def _sent_events(demo, n: int) -> bool:  # type: ignore[no-untyped-def]
    return len(await stream_events(demo.settings.nats_url, NotificationSent.subject())) >= n


async def test_replayed_answers_send_no_second_email(demo, sink, stack):
    cid = (await start(demo.ana))["id"]
    await answer(demo, cid, "Once only")
    await eventually(lambda: len(sink.to("ana@example.com")) == 1)
    notifications = stack["notifications"]
    for _ in range(3):
        await notifications.replay(rebuild=True)
    await notifications.resources["sender"].deliver_due()
    import asyncio
    await asyncio.sleep(1.0)
    assert len(sink.to("ana@example.com")) == 1
    assert count(demo.settings.database_url("notifications"), "notifications", "purpose = 'reply'") == 1


async def test_mail_server_down_then_up_sends_once_after_recovery(demo, sink):
    sink.fail = True
    cid = (await start(demo.ana))["id"]
    await answer(demo, cid, "Sent when the server is back")
    db = demo.settings.database_url("notifications")
    await eventually(lambda: count(db, "notifications", "attempts >= 1 AND status = 'pending'") == 1)
    assert sink.to("ana@example.com") == []
    sink.fail = False
    await eventually(lambda: len(sink.to("ana@example.com")) == 1)
    await eventually(lambda: count(db, "notifications", "status = 'sent'") == 1)
    assert len(sink.to("ana@example.com")) == 1


async def test_an_email_reply_lands_in_the_conversation_with_the_quote_cut(demo, sink):
    cid = (await start(demo.ana))["id"]
    await answer(demo, cid, "Could you send the invoice number?")
    [mail] = await eventually(lambda: sink.to("ana@example.com"))
    gmail = reply_to(mail, "It is 4242.\n\nOn Mon, 1 Jan 2026 at 10:00, Demo support <x@reply.localhost> wrote:\n"
                           "> Could you send the invoice number?\n")
    assert (await send_mail(demo.smtp_port, gmail, [str(mail["Reply-To"])]))[0] == 250

    async def posted() -> list:
        detail = (await demo.ana.get(f"/api/v1/portals/demo/conversations/{cid}")).json()["conversation"]
        return [m for m in detail["messages"] if m["channel"] == "email"]

    [message] = await eventually(posted)
    assert message["body"] == "It is 4242." and message["author_kind"] == "customer"


async def test_a_forged_reply_address_and_a_stranger_are_refused(demo, sink):
    cid = (await start(demo.ana))["id"]
    await answer(demo, cid, "Hello")
    [mail] = await eventually(lambda: sink.to("ana@example.com"))
    forged = reply_to(mail, "hi", headers=False)
    address = str(mail["Reply-To"])
    forged_address = address[:-len("@reply.localhost") - 2] + ("aa" if not address.endswith("aa@reply.localhost")
                                                               else "bb") + "@reply.localhost"
    code, _ = await send_mail(demo.smtp_port, forged, [forged_address])
    assert code == 550
    stranger = reply_to(mail, "let me in", sender="mallory@example.com")
    code, text = await send_mail(demo.smtp_port, stranger, [address])
    assert code == 550 and "conversation" in text
    db = demo.settings.database_url("conversations")
    assert count(db, "messages", "channel = 'email'") == 0


async def test_access_codes_go_out_over_smtp_and_are_not_kept(demo, sink):
    browser = demo.browser()
    response = await browser.post("/api/v1/portals/demo/session/email", json={"email": "code@example.com"})
    assert response.status_code == 202, response.text
    [mail] = await eventually(lambda: sink.to("code@example.com"))
    import re

    code = re.search(r"\b(\d{6})\b", mail.get_content()).group(1)  # type: ignore[union-attr]
    verified = await browser.post("/api/v1/portals/demo/session/email/verify",
                                  json={"email": "code@example.com", "code": code})
    assert verified.status_code == 200, verified.text
    db = demo.settings.database_url("notifications")
    await eventually(lambda: count(db, "notifications", "purpose = 'access_code' AND status = 'sent'") == 1)
    assert count(db, "notifications", "body LIKE :c", c=f"%{code}%") == 0  # the code is not kept once sent
    await browser.aclose()


async def test_two_replicas_send_each_answer_once(demo, sink, settings, start_service):
    """A second notifications replica shares the work: claims keep any e-mail from going out twice."""
    from services.notifications.app import build
    from services.runtime.nats import free_port

    await start_service(build, settings.model_copy(update={"inbound_smtp_port": free_port()}))
    cid = (await start(demo.ana))["id"]
    for i in range(30):
        await answer(demo, cid, f"answer {i}")
    await eventually(lambda: len(sink.to("ana@example.com")) >= 30, timeout=30)
    import asyncio

    await asyncio.sleep(1.0)
    mails = sink.to("ana@example.com")
    assert len(mails) == 30 and len({m["Message-ID"] for m in mails}) == 30


async def test_e_mails_asked_for_at_once_go_in_one_round_each_exactly_once(settings, stack, sink, monkeypatch):
    """Access-code e-mails asked for together are queued in one transaction and handed over together;
    each request is answered after its try, and each e-mail arrives once."""
    import asyncio

    from contracts.rpc import SendEmail
    from services.notifications import mail

    queued: list[int] = []
    queue = mail._queue

    def counting(session, values):  # type: ignore[no-untyped-def]
        queued.append(len(values))
        return queue(session, values)

    monkeypatch.setattr(mail, "_queue", counting)
    notifications = stack["notifications"]
    addresses = [f"code{i}@example.com" for i in range(20)]
    answers = await asyncio.gather(*(mail.send_email(notifications, SendEmail(
        to=address, subject="Your code", text=f"Your code is {i:06d}.", kind="access_code"))
        for i, address in enumerate(addresses)))
    assert sum(queued) == 20 and len(queued) < 20  # rounds, not one transaction per e-mail
    received = [m for m in sink.messages if str(m["To"]) in addresses]
    assert sorted(str(m["Message-ID"]) for m in received) == sorted(a.message_id for a in answers)
    for i, address in enumerate(addresses):
        [message] = sink.to(address)
        assert f"{i:06d}" in message.get_body(preferencelist=("plain",)).get_content()
    db = settings.database_url("notifications")
    assert count(db, "notifications", "purpose = 'access_code' AND status = 'sent' AND body = ''") == 20


async def test_a_notification_taken_over_from_a_dead_sender_keeps_saying_so_through_failed_tries(demo, sink):
    """A claim that ran out unrecorded (its sender died mid-round) flags the notification UNKNOWN_OUTCOME; a later
    try's error is written after the flag, never over it, so the operator still sees it may have arrived."""
    sink.fail = True
    cid = (await start(demo.ana))["id"]
    await answer(demo, cid, "Refused every time")
    db = demo.settings.database_url("notifications")
    await eventually(lambda: count(db, "notifications", "status = 'failed'") == 1)
    assert not rows(db, "SELECT last_error FROM notifications")[0][0].startswith(UNKNOWN_OUTCOME)
    engine = make_engine(db)  # as a sender that claimed it and died would leave it
    try:
        with engine.begin() as connection:
            past = datetime.now(UTC) - timedelta(minutes=1)
            connection.execute(text("UPDATE notifications SET status = 'pending', attempts = 0, claimed_until = :past, "
                                    "next_attempt_at = :past"), {"past": past})
    finally:
        engine.dispose()
    await eventually(lambda: count(db, "notifications", "status = 'failed' AND attempts = 3") == 1)
    [(last_error,)] = rows(db, "SELECT last_error FROM notifications")
    assert last_error.startswith(f"{UNKNOWN_OUTCOME}; then: mail server refused the message: 451"), last_error
    assert sink.to("ana@example.com") == []
