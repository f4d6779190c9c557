"""Customers answer by e-mail, over real SMTP into Portico's inbound server (real NATS, real databases).

Each accepted e-mail lands as one message, on channel `email`, in the right conversation, with the
quoted earlier thread (and the signature) cut; whatever is refused gets an SMTP error and leaves
nothing behind: no message, no stored file.
"""

import asyncio
from email.message import EmailMessage

import nats
import nats.js.errors
import pytest

from contracts.events import EmailReceived
from services.runtime.objects import ATTACHMENTS_BUCKET
from tests.fixtures.files import REFUSED, sample
from tests.helpers import count, rows
from tests.kit.conversations import start
from tests.kit.mail import eventually, send_mail
from tests.kit.streams import stream_events
from tests.kit.email import answer, demo, reply_to, settings, sink  # noqa: F401
from tests.kit.replies import PORTAL_ADDRESS, QUESTION, asked, email_messages, new_mail, stored_files


# -- helpers -------------------------------------------------------------------------------------------


def email_rows(demo, cid: str | None = None) -> int:  # type: ignore[no-untyped-def]
    where = "channel = 'email'" + (" AND conversation_id = :c" if cid else "")
    return count(demo.settings.database_url("conversations"), "messages", where, c=cid)


async def received(demo, email_message_id: str) -> list:  # type: ignore[no-untyped-def]
    return [e for e in await stream_events(demo.settings.nats_url, EmailReceived.subject())
            if e.data["email_message_id"] == email_message_id]


def untagged(subject: object) -> str:
    """The subject without our `[#<conversation id>]` tag."""
    return str(subject).split(" [#")[0]


# -- reply styles: each lands once, quote cut ----------------------------------------------------------

GMAIL_HTML = (
    '<div dir="ltr">The new card works, thank you!<div><br></div><div>Ana</div></div><br>'
    '<div class="gmail_quote"><div dir="ltr" class="gmail_attr">On Mon, Jan 5, 2026 at 10:00 AM Demo support '
    '&lt;demo@reply.localhost&gt; wrote:<br></div><blockquote class="gmail_quote" style="margin:0px 0px 0px 0.8ex;'
    f'border-left:1px solid rgb(204,204,204);padding-left:1ex">{QUESTION}<br>Demo support</blockquote></div>')

OUTLOOK_HTML = (
    '<html><head><meta http-equiv="Content-Type" content="text/html; charset=us-ascii"></head><body>'
    '<div style="font-family: Aptos, sans-serif; font-size: 12pt;">Yes, it is 12 Main Street.</div>'
    '<div id="appendonsend"></div><hr style="display:inline-block;width:98%" tabindex="-1">'
    '<div id="divRplyFwdMsg" dir="ltr"><font face="Calibri, sans-serif" style="font-size:11pt" color="#000000">'
    '<b>From:</b> Demo support &lt;demo@reply.localhost&gt;<br><b>Sent:</b> Monday, January 5, 2026 10:00 AM<br>'
    '<b>To:</b> Ana &lt;ana@example.com&gt;<br><b>Subject:</b> Re: Invoice is wrong</font><div>&nbsp;</div></div>'
    f'<div><div>{QUESTION}</div><div>Demo support</div></div></body></html>')

OUTLOOK_HEADERS = ("From: Demo support <demo@reply.localhost>\nSent: Monday, January 5, 2026 10:00 AM\n"
                   f"To: Ana <ana@example.com>\nSubject: Re: Invoice is wrong\n\n{QUESTION}\n")

REPLY_STYLES = {
    "plain, quoted below": (
        f"It is 12 Main Street.\n\nOn Mon, 5 Jan 2026 at 10:00, Demo support <demo@reply.localhost> wrote:\n"
        f"> {QUESTION}\n> Demo support\n", None, "It is 12 Main Street."),
    "html only, gmail quote": ("gmail", GMAIL_HTML, "The new card works, thank you!\n\nAna"),
    "outlook html, divRplyFwdMsg": ("outlook", OUTLOOK_HTML, "Yes, it is 12 Main Street."),
    "outlook plain, Original Message": (
        "Yes, it is 12 Main Street.\n\n-----Original Message-----\n" + OUTLOOK_HEADERS, None,
        "Yes, it is 12 Main Street."),
    "outlook plain, From/Sent header block": (
        "Yes, it is 12 Main Street.\n\n________________________________\n" + OUTLOOK_HEADERS, None,
        "Yes, it is 12 Main Street."),
    "plain with a '-- ' signature": (
        "It is 12 Main Street.\n\n-- \nAna Silva\nACME Corp, +1 555 0100\n\n"
        f"On Mon, 5 Jan 2026 at 10:00, Demo support <demo@reply.localhost> wrote:\n> {QUESTION}\n", None,
        "It is 12 Main Street."),
}


@pytest.mark.parametrize("style", REPLY_STYLES)
async def test_a_reply_lands_once_in_its_conversation_with_the_quote_cut(demo, sink, style):
    text, html, expected = REPLY_STYLES[style]
    cid, mail = await asked(demo, sink)
    reply = reply_to(mail, text, html=html)
    assert (await send_mail(demo.smtp_port, reply, [str(mail["Reply-To"])]))[0] == 250

    [message] = await eventually(lambda: email_messages(demo.ana, cid))
    assert message["author_kind"] == "customer" and message["kind"] == "message"
    assert message["body"] == expected
    assert QUESTION not in message["body"] and "Demo support" not in message["body"]
    assert email_rows(demo, cid) == 1 and email_rows(demo) == 1


# -- how the conversation is found ---------------------------------------------------------------------

@pytest.mark.parametrize("header", ["In-Reply-To", "References"])
async def test_a_reply_to_the_portal_address_is_matched_by_its_threading_headers(demo, sink, header):
    cid, mail = await asked(demo, sink)
    reply = new_mail("ana@example.com", "Re: " + untagged(mail["Subject"]), "Yes, 12 Main Street.",
                     "<threaded-1@mail.example.com>")
    if header == "In-Reply-To":
        reply["In-Reply-To"] = mail["Message-ID"]
    else:  # some clients only keep the chain, and answer a message we never saw
        reply["In-Reply-To"] = "<something-else@mail.example.com>"
        reply["References"] = f"<older@mail.example.com> {mail['Message-ID']}"
    assert (await send_mail(demo.smtp_port, reply, [PORTAL_ADDRESS]))[0] == 250

    [message] = await eventually(lambda: email_messages(demo.ana, cid))
    assert message["body"] == "Yes, 12 Main Street."
    [event] = await received(demo, "<threaded-1@mail.example.com>")
    assert event.data["matched_by"] == "in_reply_to" and event.data["conversation_id"] == cid
    listed = (await demo.ana.get("/api/v1/portals/demo/conversations")).json()["conversations"]
    assert [c["id"] for c in listed] == [cid]  # no second conversation was started


async def test_a_reply_without_threading_headers_is_matched_by_the_subject_tag(demo, sink):
    cid, mail = await asked(demo, sink)
    assert f"[#{cid}]" in str(mail["Subject"])
    reply = new_mail("ana@example.com", f"RE: Invoice is wrong [#{cid}]", "Yes, 12 Main Street.",
                     "<tagged-1@mail.example.com>")
    assert (await send_mail(demo.smtp_port, reply, [PORTAL_ADDRESS]))[0] == 250

    [message] = await eventually(lambda: email_messages(demo.ana, cid))
    assert message["body"] == "Yes, 12 Main Street."
    [event] = await received(demo, "<tagged-1@mail.example.com>")
    assert event.data["matched_by"] == "subject_tag"
    assert email_rows(demo) == 1


# -- attachments, duplicates, new conversations --------------------------------------------------------

async def test_a_reply_with_attachments_lands_with_files_the_customer_can_download(demo, sink):
    cid, mail = await asked(demo, sink)
    reply = reply_to(mail, "Here are the photo and the invoice.")
    png, pdf = sample("png"), sample("pdf")
    reply.add_attachment(png, maintype="image", subtype="png", filename="photo.png")
    reply.add_attachment(pdf, maintype="application", subtype="pdf", filename="invoice.pdf")
    assert (await send_mail(demo.smtp_port, reply, [str(mail["Reply-To"])]))[0] == 250

    [message] = await eventually(lambda: email_messages(demo.ana, cid))
    assert message["body"] == "Here are the photo and the invoice."
    files = {a["filename"]: a for a in message["attachments"]}
    assert {name: (a["content_type"], a["size"]) for name, a in files.items()} == {
        "photo.png": ("image/png", len(png)), "invoice.pdf": ("application/pdf", len(pdf))}
    for name, data in (("photo.png", png), ("invoice.pdf", pdf)):
        download = await demo.ana.get(f"/api/v1/portals/demo/attachments/{files[name]['id']}")
        assert download.status_code == 200, download.text
        assert download.content == data and download.headers["content-type"].startswith(files[name]["content_type"])
    assert await stored_files(demo) == {a["id"] for a in message["attachments"]}
    assert email_rows(demo) == 1


async def test_the_same_email_delivered_twice_is_posted_once(demo, sink):
    cid, mail = await asked(demo, sink)
    reply = reply_to(mail, "Posted once, please.")
    for _ in range(2):  # the sender's mail server did not see our first 250 and delivers again
        assert (await send_mail(demo.smtp_port, reply, [str(mail["Reply-To"])]))[0] == 250
    await eventually(lambda: email_messages(demo.ana, cid))

    later = reply_to(mail, "And a second, different e-mail.")  # processed after anything the first left behind
    assert (await send_mail(demo.smtp_port, later, [str(mail["Reply-To"])]))[0] == 250
    messages = await eventually(lambda: _at_least(email_messages(demo.ana, cid), 2))
    assert [m["body"] for m in messages] == ["Posted once, please.", "And a second, different e-mail."]
    assert email_rows(demo) == 2
    assert len(await received(demo, str(reply["Message-ID"]))) == 1


async def _at_least(messages, n: int):  # type: ignore[no-untyped-def]
    found = await messages
    return found if len(found) >= n else None


async def test_a_new_email_from_an_unknown_sender_starts_an_email_conversation(demo, sink):
    auth_db = demo.settings.database_url("auth")
    assert count(auth_db, "users", "email = 'nina.new@example.com'") == 0
    first = new_mail("Nina New <nina.new@example.com>", "My parcel never arrived",
                     "Hello, order 77 never arrived.\n\nNina", "<nina-1@mail.example.com>")
    assert (await send_mail(demo.smtp_port, first, [PORTAL_ADDRESS]))[0] == 250

    [(user_id, kind)] = await eventually(lambda: rows(auth_db, "SELECT id, kind FROM users WHERE email = :e",
                                                      e="nina.new@example.com"))
    assert kind == "customer"
    conv_db = demo.settings.database_url("conversations")
    [(cid, channel, subject)] = await eventually(lambda: rows(
        conv_db, "SELECT id, channel, subject FROM conversations WHERE customer_id = :u", u=user_id))
    assert (channel, subject) == ("email", "My parcel never arrived")

    # Signing in to the portal with that address, she finds it.
    nina = await demo.customer("nina.new@example.com")
    listed = (await nina.get("/api/v1/portals/demo/conversations")).json()["conversations"]
    assert [(c["id"], c["channel"], c["subject"]) for c in listed] == [(cid, "email", "My parcel never arrived")]
    [message] = await email_messages(nina, cid)
    assert message["body"] == "Hello, order 77 never arrived.\n\nNina" and message["author_kind"] == "customer"

    # The agent's answer reaches her by e-mail, threaded under hers.
    await answer(demo, cid, "Sorry! A new parcel is on its way.")
    [reply] = await eventually(lambda: sink.to("nina.new@example.com"))
    assert reply["In-Reply-To"] == "<nina-1@mail.example.com>"
    assert str(reply["Subject"]) == f"Re: My parcel never arrived [#{cid}]"
    assert "A new parcel is on its way." in reply.get_body(preferencelist=("plain",)).get_content()
    await nina.aclose()


async def test_an_agent_answer_after_an_email_reply_threads_under_that_email(demo, sink):
    cid, mail = await asked(demo, sink)
    reply = reply_to(mail, "It is 12 Main Street.")
    customer_id = str(reply["Message-ID"])
    assert (await send_mail(demo.smtp_port, reply, [str(mail["Reply-To"])]))[0] == 250
    await eventually(lambda: email_messages(demo.ana, cid))

    await answer(demo, cid, "Thanks, the parcel goes out today.")
    mails = await eventually(lambda: len(sink.to("ana@example.com")) >= 2 and sink.to("ana@example.com"))
    second = mails[1]
    assert second["In-Reply-To"] == customer_id
    assert mail["Message-ID"] in str(second["References"]) and customer_id in str(second["References"])
    assert str(second["Reply-To"]) == str(mail["Reply-To"])


# -- refused: an SMTP error, nothing posted, no file kept ----------------------------------------------

def forged(mail: EmailMessage) -> tuple[EmailMessage, list[str]]:
    address = str(mail["Reply-To"])
    local, _, domain = address.partition("@")
    signature = local.rpartition(".")[2]
    other = ("b" if signature[0] != "b" else "c") + signature[1:]
    return reply_to(mail, "forged", headers=False), [f"{local.rpartition('.')[0]}.{other}@{domain}"]


def stranger(mail: EmailMessage) -> tuple[EmailMessage, list[str]]:
    return reply_to(mail, "let me in", sender="mallory@example.com"), [str(mail["Reply-To"])]


def thirty_megabytes(mail: EmailMessage) -> tuple[EmailMessage, list[str]]:
    line = "All work and no play makes Jack a dull boy. All work and no play makes Jack a dull boy.\n"
    return reply_to(mail, line * (30 * 1024 * 1024 // len(line))), [str(mail["Reply-To"])]


def another_domain(mail: EmailMessage) -> tuple[EmailMessage, list[str]]:
    return reply_to(mail, "wrong door"), ["support@example.org"]


def unknown_portal(mail: EmailMessage) -> tuple[EmailMessage, list[str]]:
    return new_mail("someone.new@example.com", "Hello?", "Is anyone there?", "<nope-1@mail.example.com>",
                    to="nope@reply.localhost"), ["nope@reply.localhost"]


REFUSALS = {
    "forged reply token": (forged, 550),
    "a stranger replying": (stranger, 550),
    "30 MB": (thirty_megabytes, 552),
    "not the reply domain (at RCPT)": (another_domain, 550),
    "an unknown portal address": (unknown_portal, 550),
}


@pytest.mark.parametrize("case", REFUSALS)
async def test_a_refused_email_gets_an_smtp_error_and_leaves_nothing(demo, sink, case):
    build, code = REFUSALS[case]
    cid, mail = await asked(demo, sink)
    conv_db, auth_db = demo.settings.database_url("conversations"), demo.settings.database_url("auth")
    before = (await stored_files(demo), count(conv_db, "conversations"), count(auth_db, "users"))
    message, recipients = build(mail)

    answered, text = await send_mail(demo.smtp_port, message, recipients)
    assert answered == code, (answered, text)
    assert text  # the sender's mail server has something to tell them

    # The genuine reply afterwards still lands, alone.
    assert (await send_mail(demo.smtp_port, reply_to(mail, "The real answer."), [str(mail["Reply-To"])]))[0] == 250
    [landed] = await eventually(lambda: email_messages(demo.ana, cid))
    assert landed["body"] == "The real answer."
    assert email_rows(demo) == 1
    assert (await stored_files(demo), count(conv_db, "conversations"), count(auth_db, "users")) == before


async def test_an_automatic_reply_is_accepted_but_not_posted(demo, sink):
    cid, mail = await asked(demo, sink)
    vacation = reply_to(mail, "I am out of the office until Monday.")
    vacation["Auto-Submitted"] = "auto-replied"
    assert (await send_mail(demo.smtp_port, vacation, [str(mail["Reply-To"])]))[0] == 250

    assert (await send_mail(demo.smtp_port, reply_to(mail, "The real answer."), [str(mail["Reply-To"])]))[0] == 250
    [message] = await eventually(lambda: email_messages(demo.ana, cid))
    assert message["body"] == "The real answer."
    await asyncio.sleep(0.5)
    assert email_rows(demo) == 1
    assert await received(demo, str(vacation["Message-ID"])) == []
