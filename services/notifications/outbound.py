"""Delivering notifications: e-mail over SMTP (or the development catcher) and channel webhooks.

A notification row is written in the same transaction as the inbox row of the event that asks for
it, so it exists once however often the event is delivered or replayed. The sender claims due rows
(so replicas never send one twice), hands them over, and records the outcome with a
`NotificationSent` or, after the last try, `NotificationFailed`. Each e-mail's Message-ID is fixed
when the row is written: a resend after a crash between hand-over and bookkeeping carries the
same Message-ID, which mail clients show once.
"""

import asyncio
import time
from datetime import datetime, timedelta
from dataclasses import dataclass

import httpx
from sqlalchemy import or_, update
from sqlmodel import Session, col, select

from contracts import operations
from contracts.errors import ServiceError
from contracts.events import NotificationFailed, NotificationSent
from contracts.rpc import GetPortalInfo, PortalInfo
from services.notifications import compose, tokens
from services.notifications.models import ChannelWebhook, Customer, Notification, ThreadMessage
from services.notifications.transports import DeliveryError, mail_transport, post_webhook
from services.runtime.logging import get_logger
from services.runtime.outbox import record_event
from services.runtime.readmodel import insert_once
from services.runtime.service import Service
from services.runtime.clock import now

log = get_logger("portico.notifications")

CLAIM_FOR = timedelta(minutes=10)  # longer than a round of slow webhooks takes
WAIT_FOR_RECIPIENT = timedelta(hours=1)  # an account auth has not told us of yet (delayed creation)
PORTAL_CACHE_SECONDS = 300.0


class Deferred(Exception):
    """Not deliverable yet, through no fault of the receiver: try again soon without counting a try."""



class Sender:
    def __init__(self, service: Service) -> None:
        self.service = service
        settings = service.settings
        self.transport = mail_transport(settings.smtp_url.get_secret_value() if settings.smtp_url else None,
                                        settings.data_dir / "mail")
        self.http = httpx.AsyncClient(timeout=10.0)
        self.secret = tokens.token_secret(settings)
        self.wake = asyncio.Event()
        self._portals: dict[str, tuple[float, PortalInfo]] = {}

    # -- the loop -------------------------------------------------------------------------------------

    async def run(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self.wake.wait(), timeout=1.0)
            except TimeoutError:
                pass
            self.wake.clear()
            try:
                while await self.deliver_due():
                    pass
            except Exception as exc:  # the database or NATS is away: try again on the next round
                log.warning("notification round failed", error=repr(exc))

    async def deliver_due(self, limit: int = 50) -> int:
        """One round: claim what is due, hand it over, record every outcome in one transaction."""
        return await self._deliver(await self.service.transaction(_claim, None, limit))

    async def deliver(self, notification_id: str) -> bool:
        """Try one pending notification now; True when this call handed it over."""
        return await self._deliver(await self.service.transaction(_claim, notification_id, 1)) == 1

    async def close(self) -> None:
        await self.transport.close()
        await self.http.aclose()

    async def _deliver(self, batch: list[Notification]) -> int:
        if not batch:
            return 0  # nothing due, or another replica is on it
        context = await self.service.read(_context, batch)
        outcomes: list[tuple[str, str, str]] = []
        for notification in batch:
            try:
                if notification.kind == "webhook":
                    await self._webhook(notification, context)
                else:
                    sender, recipient, data = await self._email(notification, context)
                    await self.transport.send(sender, recipient, data)
            except Deferred as exc:
                outcomes.append((notification.id, "deferred", str(exc)))
            except (DeliveryError, ServiceError) as exc:
                outcomes.append((notification.id, "failed_try", str(exc)[:500]))
            except Exception as exc:  # a bug must cost this notification a try, not hold up the round
                log.error("notification could not be built", notification_id=notification.id, error=repr(exc),
                          exc_info=exc)
                outcomes.append((notification.id, "failed_try", f"internal error: {type(exc).__name__}"))
            else:
                outcomes.append((notification.id, "sent", ""))
        settings = self.service.settings
        await self.service.transaction(_record, outcomes, settings.notification_max_attempts,
                                       settings.notification_backoff)
        return sum(1 for _, outcome, _ in outcomes if outcome == "sent")

    async def _portal(self, slug: str) -> PortalInfo:
        cached = self._portals.get(slug)
        if cached and time.monotonic() - cached[0] < PORTAL_CACHE_SECONDS:
            return cached[1]
        info = await self.service.client.call(operations.auth.portal_info, GetPortalInfo(portal=slug))
        self._portals[slug] = (time.monotonic(), info)
        return info

    async def _email(self, notification: Notification, context: "Context") -> tuple[str, str, bytes]:
        """(envelope sender: the notification's bounce address, recipient, the e-mail as bytes)."""
        settings = self.service.settings
        bounces_to = tokens.bounce_address(self.secret, notification.id, settings.reply_domain)
        if notification.purpose != "reply":
            sender = self._sender(notification.portal)
            message = compose.plain_email(to=notification.recipient_email or "", subject=notification.subject,
                                          text=notification.body, sender=sender, sender_name="Portico",
                                          message_id=notification.email_message_id or "")
            return bounces_to, notification.recipient_email or "", compose.as_bytes(message)
        recipient = context.recipients.get(notification.recipient_id or "")
        if recipient is None or not recipient.email:
            if now() - notification.created_at > WAIT_FOR_RECIPIENT:
                raise DeliveryError("the customer's account is unknown")
            raise Deferred("waiting for the customer's account")
        portal = await self._portal(notification.portal or "")
        conversation_id = notification.conversation_id or ""
        references = context.references.get(conversation_id, [])
        sender = self._sender(portal.slug)
        message = compose.reply_email(compose.Reply(
            to=recipient.email, to_name=recipient.display_name, portal=portal.slug, portal_name=portal.name,
            conversation_id=conversation_id, subject=notification.subject, body=notification.body,
            message_id=notification.email_message_id or "", references=references,
            reply_to=tokens.reply_address(self.secret, conversation_id, settings.reply_domain), sender=sender,
            conversation_url=f"{settings.resolved_public_url}/portals/{portal.slug}/conversations/{conversation_id}"))
        return bounces_to, recipient.email, compose.as_bytes(message)

    def _sender(self, portal: str | None) -> str:
        settings = self.service.settings
        return settings.mail_from or f"{portal or 'support'}@{settings.reply_domain}"

    async def _webhook(self, notification: Notification, context: "Context") -> None:
        hook = context.webhooks.get((notification.org_id or "", notification.channel or ""))
        if hook is None:
            raise DeliveryError(f"no webhook is set up for the {notification.channel} channel")
        recipient = context.recipients.get(notification.recipient_id or "")
        await post_webhook(self.http, hook.url, hook.secret, notification.id, {
            "delivery_id": notification.id, "channel": notification.channel, "org_id": notification.org_id,
            "portal": notification.portal, "conversation_id": notification.conversation_id,
            "message_id": notification.message_id,
            "customer": {"id": notification.recipient_id, "email": recipient.email if recipient else None},
            "body": notification.body, "attachments": notification.attachments})


# -- transactions (worker threads) -------------------------------------------------------------------

@dataclass
class Context:
    """What a round's notifications need from the database, read at once."""

    recipients: dict[str, Customer]
    references: dict[str, list[str]]
    webhooks: dict[tuple[str, str], ChannelWebhook]


def _claim(session: Session, notification_id: str | None, limit: int) -> list[Notification]:
    """Due notifications (or the one named), marked as ours for a while so no replica sends them too."""
    at = now()
    free = or_(col(Notification.claimed_until).is_(None), col(Notification.claimed_until) < at)
    if notification_id is None:
        ids = list(session.exec(select(Notification.id).where(
            Notification.status == "pending", col(Notification.next_attempt_at) <= at, free)
            .order_by(col(Notification.next_attempt_at)).limit(limit)).all())
    else:
        ids = [notification_id]
    if not ids:
        return []
    claimed = session.connection().execute(
        update(Notification).where(col(Notification.id).in_(ids), Notification.status == "pending", free)
        .values(claimed_until=at + CLAIM_FOR).returning(Notification.id)).scalars().all()
    if not claimed:
        return []
    rows = session.exec(select(Notification).where(col(Notification.id).in_(claimed))
                        .execution_options(populate_existing=True)).all()
    return sorted(rows, key=lambda n: (n.next_attempt_at, n.id))


def _context(session: Session, batch: list[Notification]) -> Context:
    customer_ids = {n.recipient_id for n in batch if n.recipient_id}
    conversation_ids = {n.conversation_id for n in batch if n.conversation_id and n.kind == "email"}
    hooks = {(n.org_id, n.channel) for n in batch if n.kind == "webhook" and n.org_id and n.channel}
    references: dict[str, list[str]] = {}
    if conversation_ids:
        for message_id, conversation_id in session.exec(
                select(ThreadMessage.email_message_id, ThreadMessage.conversation_id)
                .where(col(ThreadMessage.conversation_id).in_(conversation_ids))
                .order_by(col(ThreadMessage.created_at))).all():
            references.setdefault(conversation_id, []).append(message_id)
    return Context(
        recipients={c.id: c for c in session.exec(select(Customer).where(col(Customer.id).in_(customer_ids))).all()}
        if customer_ids else {},
        references=references,
        webhooks={key: hook for key in hooks if (hook := session.get(ChannelWebhook, key)) is not None})


def _record(session: Session, outcomes: list[tuple[str, str, str]], max_attempts: int,
            backoff: tuple[float, ...]) -> None:
    rows = {n.id: n for n in session.exec(select(Notification).where(
        col(Notification.id).in_([o[0] for o in outcomes]))).all()}
    for notification_id, outcome, error in outcomes:
        notification = rows[notification_id]
        if notification.status == "cancelled":  # its message was redacted while this try was on its way
            notification.claimed_until = None
            if outcome == "sent":  # handed over before the redaction could stop it: say so
                _sent(session, notification)
                notification.last_error = "the message was redacted after it was handed over"
                log.warning("a redacted message had already been handed over", notification_id=notification.id,
                            conversation_id=notification.conversation_id)
        elif outcome == "sent":
            _sent(session, notification)
        elif outcome == "deferred":
            notification.claimed_until, notification.last_error = None, error
            notification.next_attempt_at = now() + timedelta(seconds=2)
        else:
            _failed_try(session, notification, error, max_attempts, backoff)
        session.add(notification)


def _event_fields(notification: Notification) -> dict[str, object]:
    return {"notification_id": notification.id, "cause_event_id": notification.cause_event_id,
            "kind": notification.kind, "channel": notification.channel, "conversation_id": notification.conversation_id}


def _sent(session: Session, notification: Notification) -> None:
    notification.status, notification.sent_at, notification.claimed_until = "sent", now(), None
    notification.attempts += 1
    notification.body = ""  # the conversation keeps the text; a code must not outlive its e-mail
    if notification.purpose == "reply" and notification.kind == "email" and notification.email_message_id:
        thread_message(session, notification.email_message_id, notification.conversation_id or "", now())
    record_event(session, NotificationSent(**_event_fields(notification),  # type: ignore[arg-type]
                                           email_message_id=notification.email_message_id,
                                           attempts=notification.attempts),
                 org_id=notification.org_id or "", aggregate_id=notification.id, aggregate_version=notification.attempts)
    log.info("notification sent", notification_id=notification.id, kind=notification.kind,
             purpose=notification.purpose, attempts=notification.attempts)


def _failed_try(session: Session, notification: Notification, error: str, max_attempts: int,
                backoff: tuple[float, ...]) -> None:
    notification.attempts += 1
    notification.claimed_until, notification.last_error = None, error
    if notification.attempts >= max_attempts:
        notification.status = "failed"
        record_event(session, NotificationFailed(**_event_fields(notification),  # type: ignore[arg-type]
                                                 error=error, attempts=notification.attempts),
                     org_id=notification.org_id or "", aggregate_id=notification.id,
                     aggregate_version=notification.attempts)
        log.error("notification failed", notification_id=notification.id, kind=notification.kind, error=error,
                  attempts=notification.attempts)
    else:
        wait = backoff[min(notification.attempts - 1, len(backoff) - 1)]
        notification.next_attempt_at = now() + timedelta(seconds=wait)
        log.warning("notification try failed", notification_id=notification.id, kind=notification.kind,
                    error=error, attempts=notification.attempts, retry_in=wait)


def thread_message(session: Session, email_message_id: str, conversation_id: str, at: datetime) -> None:
    """Remember an e-mail of the conversation (once), for threading and for matching replies."""
    insert_once(session, ThreadMessage, {"email_message_id": email_message_id, "conversation_id": conversation_id,
                                         "created_at": at}, key="email_message_id")
