"""Answers on messaging channels (WhatsApp, SMS, ...) go to the company's provider adapter as a signed
webhook: a real HTTP server in the test receives them. Delivered once, retried with backoff, marked
failed for operators after the last try (`portico notifications failed|retry`), never for internal
notes. And, in development without an SMTP server, `/dev/mail` shows the e-mails Portico sent."""

import asyncio
import hashlib
import hmac
import json
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from contracts import operations
from contracts.events import NotificationFailed, NotificationSent
from contracts.notifications import ListNotifications, NotificationList
from services.runtime.nats import free_port
from services.runtime.settings import Settings
from tests.conftest import make_settings
from tests.helpers import count, rows
from tests.kit.mail import eventually
from tests.kit.seeding import seed
from tests.kit.streams import stream_events
from tests.kit.channels import channel_secret, deliver, message
from tests.kit.email import answer, demo, settings, sink  # noqa: F401

PORTICO = str(Path(sys.executable).parent / "portico")


# -- the provider's adapter: a real HTTP server ------------------------------------------------------

@dataclass
class Delivery:
    path: str
    headers: dict[str, str]
    body: bytes
    answered: int

    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class Hook:
    """An HTTP server on a free port that keeps every request and answers `fail_next` statuses first,
    then `status`. While `hold` is set to an unset event, requests arrive but wait for their answer."""

    port: int = field(default_factory=free_port)
    status: int = 200
    fail_next: list[int] = field(default_factory=list)
    received: list[Delivery] = field(default_factory=list)
    arrived: int = 0
    hold: asyncio.Event | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def start(self) -> "Hook":
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        return self

    async def stop(self) -> None:
        self.server.close()
        await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            _, path, _ = (await reader.readline()).decode().split(" ", 2)
            headers = {}
            while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
                name, _, value = line.decode().partition(":")
                headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            self.arrived += 1
            if self.hold is not None:
                await self.hold.wait()
            status = self.fail_next.pop(0) if self.fail_next else self.status
            self.received.append(Delivery(path, headers, body, status))
            writer.write(f"HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode())
            await writer.drain()
        finally:
            writer.close()

    def accepted(self) -> list[Delivery]:
        return [d for d in self.received if 200 <= d.answered < 300]


@pytest.fixture
async def hook():  # type: ignore[no-untyped-def]
    hook = await Hook().start()
    yield hook
    await hook.stop()


def verifies(delivery: Delivery, secret: str) -> bool:
    """What the adapter checks: sha256=HMAC-SHA256(secret, "<timestamp>.<raw body>"), timestamp recent."""
    timestamp = delivery.headers["x-portico-timestamp"]
    expected = "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + delivery.body,
                                    hashlib.sha256).hexdigest()
    return (hmac.compare_digest(delivery.headers["x-portico-signature"], expected)
            and abs(time.time() - int(timestamp)) < 300)


# -- helpers ---------------------------------------------------------------------------------------

async def set_webhook(demo, channel: str, url: str) -> str:  # type: ignore[no-untyped-def]
    response = await demo.admin.put(f"/api/v1/admin/channels/{channel}/webhook", json={"url": url})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["channel"] == channel and body["url"] == url and len(body["secret"]) >= 32
    return body["secret"]


async def channel_conversation(demo, channel: str = "whatsapp",  # type: ignore[no-untyped-def]
                               email: str = "wanda@example.com") -> str:
    """A customer writes on the channel, through the signed inbound endpoint: the conversation's id."""
    keys = await channel_secret(demo)
    posted = await deliver(demo, channel, keys["org_id"], keys["secret"], message(email, body="Where is order 7?"))
    assert posted["created_conversation"] is True
    # notifications has heard of the customer and the conversation (eventually consistent)
    db = demo.settings.database_url("notifications")
    await eventually(lambda: count(db, "customer_addresses", "email = :e", e=email) == 1
                     and count(db, "conversation_addresses", "id = :c", c=posted["conversation_id"]) == 1)
    return posted["conversation_id"]


def notifications_of(demo, cid: str) -> list[tuple]:  # type: ignore[no-untyped-def]
    return rows(demo.settings.database_url("notifications"),
                "SELECT id, kind, status, attempts, last_error FROM notifications WHERE conversation_id = :c", c=cid)


async def events(demo, event_type, cid: str) -> list:  # type: ignore[no-untyped-def]
    return [e for e in await stream_events(demo.settings.nats_url, event_type.subject())
            if e.data["conversation_id"] == cid]


async def portico(settings: Settings, *args: str) -> tuple[int, str, str]:
    """The operator's CLI as a real process, pointed at the test's NATS (async: the services run in this loop)."""
    process = await asyncio.create_subprocess_exec(
        PORTICO, *args, env={**os.environ, "PORTICO_NATS_URL": settings.nats_url},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    return process.returncode or 0, out.decode(), err.decode()


# -- webhooks --------------------------------------------------------------------------------------

async def test_an_answer_on_whatsapp_is_one_signed_webhook(demo, hook):
    secret = await set_webhook(demo, "whatsapp", hook.url)
    cid = await channel_conversation(demo)
    posted = await answer(demo, cid, "Your order ships tomorrow.")

    [delivery] = await eventually(lambda: hook.received)
    assert delivery.path == "/hook" and delivery.headers["content-type"] == "application/json"
    assert verifies(delivery, secret)
    assert not verifies(delivery, secret[:-1] + ("A" if secret[-1] != "A" else "B"))
    payload = delivery.json()
    assert payload["body"] == "Your order ships tomorrow."
    assert payload["channel"] == "whatsapp" and payload["conversation_id"] == cid and payload["portal"] == "demo"
    assert payload["message_id"] == posted["message"]["id"]
    assert payload["customer"]["email"] == "wanda@example.com"
    assert delivery.headers["x-portico-delivery"] == payload["delivery_id"]

    await eventually(lambda: [n[2] for n in notifications_of(demo, cid)] == ["sent"])
    [sent] = await eventually(lambda: events(demo, NotificationSent, cid))
    assert sent.data["kind"] == "webhook" and sent.data["notification_id"] == payload["delivery_id"]
    await asyncio.sleep(1.5)  # a few rounds of the sender: nothing more
    assert len(hook.received) == 1


async def test_a_webhook_that_fails_twice_is_delivered_once_on_the_third_try(demo, hook):
    secret = await set_webhook(demo, "whatsapp", hook.url)
    hook.fail_next = [500, 500]
    cid = await channel_conversation(demo)
    await answer(demo, cid, "Third time lucky.")

    await eventually(lambda: hook.accepted())
    assert [d.answered for d in hook.received] == [500, 500, 200]
    assert len({d.headers["x-portico-delivery"] for d in hook.received}) == 1  # the same delivery, tried again
    assert all(verifies(d, secret) and d.json()["body"] == "Third time lucky." for d in hook.received)
    await eventually(lambda: [n[2:4] for n in notifications_of(demo, cid)] == [("sent", 3)])
    [sent] = await eventually(lambda: events(demo, NotificationSent, cid))
    assert sent.data["attempts"] == 3
    await asyncio.sleep(1.5)
    assert len(hook.accepted()) == 1 and len(hook.received) == 3


async def test_a_webhook_that_always_fails_is_marked_failed_and_retried_by_hand(demo, hook, stack):
    secret = await set_webhook(demo, "whatsapp", hook.url)
    hook.status = 500
    cid = await channel_conversation(demo)
    await answer(demo, cid, "Can you hear me?")

    [failed] = await eventually(lambda: events(demo, NotificationFailed, cid))
    assert failed.data["kind"] == "webhook" and failed.data["attempts"] == 3
    assert failed.data["error"] == "webhook answered 500"
    assert "Can you hear me?" not in failed.data["error"]
    assert len(hook.received) == 3 and hook.accepted() == []
    notification_id = failed.data["notification_id"]

    # Operators see it: over RPC, and with the CLI.
    listed = await stack["auth"].client.call(operations.notifications.list_notifications, ListNotifications(status="failed"))
    [view] = [n for n in listed.notifications if n.conversation_id == cid]
    assert (view.id, view.kind, view.channel, view.status, view.attempts, view.last_error) == (
        notification_id, "webhook", "whatsapp", "failed", 3, "webhook answered 500")
    code, out, err = await portico(demo.settings, "notifications", "failed", "--json")
    assert code == 0, err
    [row] = [json.loads(line) for line in out.splitlines() if json.loads(line)["id"] == notification_id]
    assert row["status"] == "failed" and row["last_error"] == "webhook answered 500"

    # The adapter is fixed; the operator retries it: delivered once.
    hook.status = 200
    code, out, err = await portico(demo.settings, "notifications", "retry", notification_id)
    assert code == 0, err
    assert out.strip() == f"{notification_id}: sent after 1 try"
    assert len(hook.accepted()) == 1 and verifies(hook.accepted()[0], secret)
    assert hook.accepted()[0].json()["body"] == "Can you hear me?"
    await eventually(lambda: events(demo, NotificationSent, cid))
    code, out, _ = await portico(demo.settings, "notifications", "failed", "--json")
    assert notification_id not in out
    await asyncio.sleep(1.5)
    assert len(hook.accepted()) == 1 and len(hook.received) == 4


async def test_an_internal_note_on_whatsapp_posts_nothing(demo, hook):
    await set_webhook(demo, "whatsapp", hook.url)
    cid = await channel_conversation(demo)
    await answer(demo, cid, "internal: customer is VIP, refund quickly", internal=True)
    await answer(demo, cid, "We refunded you.")  # processed after the note

    [delivery] = await eventually(lambda: hook.received)
    assert delivery.json()["body"] == "We refunded you."
    await asyncio.sleep(1.5)
    assert len(hook.received) == 1
    assert b"VIP" not in delivery.body
    assert [n[1:3] for n in notifications_of(demo, cid)] == [("webhook", "sent")]


async def test_a_channel_without_a_webhook_ends_failed_with_a_clear_error(demo, hook, stack):
    await set_webhook(demo, "whatsapp", hook.url)  # another channel has one; sms does not
    cid = await channel_conversation(demo, "sms", "sam@example.com")
    await answer(demo, cid, "Your order ships tomorrow.")

    [failed] = await eventually(lambda: events(demo, NotificationFailed, cid))
    assert failed.data["channel"] == "sms"
    listed = await stack["auth"].client.call(operations.notifications.list_notifications, ListNotifications(status="failed"))
    [view] = [n for n in listed.notifications if n.conversation_id == cid]
    assert view.status == "failed" and view.last_error == "no webhook is set up for the sms channel"
    assert hook.received == []


async def test_a_webhook_url_must_be_a_url_an_admin_sets(demo, hook):
    customer_view = await demo.ana.put("/api/v1/admin/channels/whatsapp/webhook", json={"url": hook.url})
    assert customer_view.status_code in (401, 403) and customer_view.json()["error"]
    agent_view = await demo.agent.put("/api/v1/admin/channels/whatsapp/webhook", json={"url": hook.url})
    assert agent_view.status_code in (401, 403) and agent_view.json()["error"]
    bad = await demo.admin.put("/api/v1/admin/channels/whatsapp/webhook", json={"url": "ftp://example.com/x"})
    assert bad.status_code == 422 and bad.json()["error"] and bad.json()["message"]
    portal = await demo.admin.put("/api/v1/admin/channels/portal/webhook", json={"url": hook.url})
    assert portal.status_code == 422, portal.text  # portal answers go by e-mail
    # Each PUT rotates the secret: the new one signs, the old one no longer does.
    first = await set_webhook(demo, "whatsapp", hook.url)
    second = await set_webhook(demo, "whatsapp", hook.url)
    assert first != second
    cid = await channel_conversation(demo)
    await answer(demo, cid, "Signed with the new secret.")
    [delivery] = await eventually(lambda: hook.received)
    assert verifies(delivery, second) and not verifies(delivery, first)


async def test_replayed_answers_post_no_second_webhook(demo, hook, stack):
    await set_webhook(demo, "whatsapp", hook.url)
    cid = await channel_conversation(demo)
    await answer(demo, cid, "Once only.")
    await eventually(lambda: hook.accepted())
    for _ in range(3):
        await stack["notifications"].replay(rebuild=True)
    await stack["notifications"].resources["sender"].deliver_due()
    await asyncio.sleep(1.5)
    assert len(hook.received) == 1
    assert [n[2] for n in notifications_of(demo, cid)] == ["sent"]


async def redacted_on_its_way(demo, hook: Hook, body: str) -> str:  # type: ignore[no-untyped-def]
    """An answer whose webhook try the adapter holds while the agent redacts it: the conversation's id.
    The notification is cancelled by then; `hook.hold.set()` lets the try get its answer."""
    await set_webhook(demo, "whatsapp", hook.url)
    hook.hold = asyncio.Event()
    cid = await channel_conversation(demo)
    posted = await answer(demo, cid, body)
    await eventually(lambda: hook.arrived == 1)
    redacted = await demo.agent.post(f"/api/v1/agent/conversations/{cid}/messages/{posted['message']['id']}/redact")
    assert redacted.status_code == 200, redacted.text
    await eventually(lambda: [n[2] for n in notifications_of(demo, cid)] == ["cancelled"])
    return cid


async def test_a_redacted_answer_is_not_retried_and_operators_can_list_it_as_cancelled(demo, hook):
    cid = await redacted_on_its_way(demo, hook, "Sent to the wrong customer, sorry")
    hook.status = 500  # that try fails ...
    hook.hold.set()
    await eventually(lambda: len(hook.received) == 1)
    hook.status = 200  # ... and the adapter is back: the redacted answer is never tried again
    await asyncio.sleep(1.5)  # longer than every backoff step of these settings
    assert len(hook.received) == 1 and hook.accepted() == []
    assert [n[2] for n in notifications_of(demo, cid)] == ["cancelled"]

    # `portico notifications failed --status cancelled` (its help offers cancelled) shows it.
    code, out, err = await portico(demo.settings, "notifications", "failed", "--status", "cancelled", "--json")
    assert code == 0, err
    [row] = [json.loads(line) for line in out.splitlines()]
    assert row["conversation_id"] == cid and row["status"] == "cancelled"


async def test_an_answer_redacted_while_its_webhook_is_answered_is_recorded_as_delivered(demo, hook):
    """A request already with the provider cannot be called back: operators see that it went."""
    cid = await redacted_on_its_way(demo, hook, "Already on its way")
    hook.hold.set()
    [(_, _, status, attempts, note)] = await eventually(
        lambda: [n for n in notifications_of(demo, cid) if n[2] == "sent"])
    assert attempts == 1 and note == "the message was redacted after it was handed over"
    await asyncio.sleep(1.0)
    assert len(hook.received) == 1
    [sent] = await eventually(lambda: events(demo, NotificationSent, cid))
    assert sent.data["attempts"] == 1


# -- the development mail catcher ------------------------------------------------------------------

async def test_dev_mail_is_not_served_when_a_real_smtp_server_is_set(demo, sink):
    response = await demo.admin.get("/dev/mail")
    assert response.status_code == 404 and response.json()["error"] == "not_found"


class TestDevMailCatcher:
    """`make run` without PORTICO_SMTP_URL: every e-mail is caught and listed at `/dev/mail`."""

    @pytest.fixture
    def settings(self, nats_server, databases, tmp_path) -> Settings:  # type: ignore[no-untyped-def]
        return make_settings(nats_server.url, databases, tmp_path / "var")

    async def test_an_access_code_email_shows_up_at_dev_mail_and_signs_in(self, settings, stack, gateway):
        assert settings.smtp_url is None
        seed(settings)
        browser = gateway.client
        assert (await browser.get("/dev/mail")).json()["mails"] == []
        started = await browser.post("/api/v1/portals/demo/session/email", json={"email": "dora@example.com"})
        assert started.status_code == 202, started.text

        async def caught() -> list:
            response = await browser.get("/dev/mail")
            assert response.status_code == 200, response.text
            return [m for m in response.json()["mails"] if m["to"] == "dora@example.com"]

        [mail] = await eventually(caught)
        assert mail["subject"].endswith("sign-in code") and mail["file"].endswith(".eml") and mail["date"]
        code = re.search(r"\b(\d{6,8})\b", mail["text"])
        assert code, mail["text"]
        assert (settings.data_dir / "mail" / mail["file"]).exists()
        verified = await browser.post("/api/v1/portals/demo/session/email/verify",
                                      json={"email": "dora@example.com", "code": code.group(1)})
        assert verified.status_code == 200, verified.text
        assert verified.json()["email"] == "dora@example.com"

        async with httpx.AsyncClient(base_url=gateway.base_url) as other:  # limit and newest first
            limited = await other.get("/dev/mail", params={"limit": 1})
            assert limited.status_code == 200 and len(limited.json()["mails"]) == 1
