"""Customers' e-mail replies: a conversation with an answer to reply to, and what it became."""

from email.message import EmailMessage
import nats
import nats.js.errors
from services.runtime.objects import ATTACHMENTS_BUCKET
from tests.kit.conversations import start
from tests.kit.mail import eventually
from tests.kit.email import answer, demo, reply_to, settings, sink  # noqa: F401


PORTAL_ADDRESS = "demo@reply.localhost"  # the demo portal's own support address


QUESTION = "Could you confirm your delivery address?"


async def asked(demo, sink, subject: str = "Invoice is wrong"):  # type: ignore[no-untyped-def]
    """Ana opens a conversation in the portal, an agent asks her something: (conversation id, the e-mail she got)."""
    cid = (await start(demo.ana, subject=subject))["id"]
    await answer(demo, cid, QUESTION)
    [mail] = await eventually(lambda: sink.to("ana@example.com"))
    return cid, mail


async def email_messages(browser, cid: str) -> list[dict]:  # type: ignore[no-untyped-def]
    """What the customer sees in the portal: the conversation's messages that came in by e-mail."""
    response = await browser.get(f"/api/v1/portals/demo/conversations/{cid}")
    assert response.status_code == 200, response.text
    return [m for m in response.json()["conversation"]["messages"] if m["channel"] == "email"]


async def stored_files(demo) -> set[str]:  # type: ignore[no-untyped-def]
    """Names of the objects in the attachments bucket (deleted ones left out)."""
    nc = await nats.connect(demo.settings.nats_url)
    try:
        bucket = await nc.jetstream().object_store(ATTACHMENTS_BUCKET)
        try:
            return {info.name for info in await bucket.list(ignore_deletes=True)}
        except nats.js.errors.NotFoundError:  # an empty bucket
            return set()
    finally:
        await nc.close()


def new_mail(sender: str, subject: str, body: str, message_id: str, to: str = PORTAL_ADDRESS) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = message_id
    message.set_content(body)
    return message
