"""Delivering notifications: e-mail over SMTP (or the development catcher) and channel webhooks.

A notification row is written in the same transaction as the inbox row of the event that asks for
it, so it exists once however often the event is delivered or replayed. The sender claims due rows
(so replicas never send one twice), hands them over, and records the outcome with a
`NotificationSent` or, after the last try, `NotificationFailed`. Each e-mail's Message-ID is fixed
when the row is written: a resend after a crash between hand-over and bookkeeping carries the
same Message-ID, which mail clients show once. That is the one case a recipient can get an e-mail twice:
SMTP cannot say whether the server took a message whose sender died before reading the answer, so a
claim that ran out without its outcome recorded (`kill -9`, a machine lost mid-round) is sent again, and
the row keeps `UNKNOWN_OUTCOME` in `last_error` and a warning is logged, so an operator can tell.

A round of up to 100 notifications costs two transactions, both SQLAlchemy Core statements with no ORM
unit of work: one claims the due rows and reads what their e-mails need (recipients, threading
Message-IDs, webhooks), one records every outcome (executemany updates, thread rows, outbox events).
"""

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

import httpx
from sqlalchemy import Row, Table, bindparam, case, or_, select, update
from sqlmodel import Session

from contracts import operations
from contracts.envelope import Event
from contracts.errors import ServiceError
from contracts.events import NotificationFailed, NotificationSent
from contracts.rpc import GetPortalInfo, PortalInfo
from services.notifications import compose, tokens
from services.notifications.models import ChannelWebhook, Customer, Notification, ThreadMessage
from services.notifications.transports import DeliveryError, mail_transport, post_webhook
from services.runtime.logging import get_logger
from services.runtime.metrics import email_outcome
from services.runtime.outbox import record_events
from services.runtime.readmodel import insert_once_statement
from services.runtime.service import Service
from services.runtime.clock import now

log = get_logger("portico.notifications")

# A round's claim on its notifications: renewed every CLAIM_RENEW_EVERY while the round runs, so a slow
# round keeps it, and a replica that died mid-round leaves its notifications to the others (or to itself
# after a restart) within CLAIM_FOR. A renewal that fails is logged; the round goes on.
CLAIM_FOR = timedelta(seconds=20)
CLAIM_RENEW_EVERY = 5.0
# Written into `last_error` of a notification claimed after an earlier claim ran out unrecorded; a later try's
# error is written after it, a send keeps it.
UNKNOWN_OUTCOME = ("an earlier try's outcome is unknown (the process sending it stopped before recording it); "
                   "tried again with the same Message-ID or delivery id")
STOP_GRACE = 10.0  # seconds a stopping sender waits for the round it is handing over to finish and be recorded
WAIT_FOR_RECIPIENT = timedelta(hours=1)  # an account auth has not told us of yet (delayed creation)
PORTAL_CACHE_SECONDS = 300.0


# A conversation's reply address is the same for every answer: signed once (an HMAC and base32 an e-mail).
_reply_address = lru_cache(maxsize=4096)(tokens.reply_address)


class Deferred(Exception):
    """Not deliverable yet, through no fault of the receiver: try again soon without counting a try."""



class Sender:
    def __init__(self, service: Service) -> None:
        self.service = service
        settings = service.settings
        self.transport = mail_transport(settings.smtp_url.get_secret_value() if settings.smtp_url else None,
                                        settings.data_dir / "mail")
        self._http: httpx.AsyncClient | None = None  # made on the first webhook (its TLS setup costs ~50 ms)
        self.secret = tokens.token_secret(settings)
        self.wake = asyncio.Event()
        self._portals: dict[str, tuple[float, PortalInfo]] = {}
        self._rounds: set[asyncio.Future[int]] = set()  # rounds handing notifications over now

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

    async def deliver_due(self, limit: int = 100) -> int:
        """One round: claim what is due (one transaction), hand it over, record every outcome (one
        transaction); returns how many were handed over."""
        return await self._deliver(*await self.service.transaction(_claim, None, limit))

    async def deliver(self, notification_id: str) -> bool:
        """Try one pending notification now; True when this call handed it over."""
        return await self._deliver(*await self.service.transaction(_claim, notification_id, 1)) == 1

    async def close(self) -> None:
        """Stop: the rounds in progress finish and record what they handed over (at most STOP_GRACE s; the
        ones that do not are cancelled, their notifications taken over once their claim runs out), so a
        stop, unlike a crash, sends nothing twice."""
        if self._rounds:
            _, unfinished = await asyncio.wait(set(self._rounds), timeout=STOP_GRACE)
            for round_ in unfinished:
                log.warning("a round of notifications did not finish before the stop", notifications="unknown")
                round_.cancel()
        await self.transport.close()
        if self._http is not None:
            await self._http.aclose()

    async def _deliver(self, batch: "list[Row[Any]]", context: "Context") -> int:
        if not batch:
            return 0  # nothing due, or another replica is on it
        renewal = asyncio.create_task(self._keep_claim([row.id for row in batch]))
        # The round runs in a task of its own that a cancelled caller (a stopping service) does not cancel:
        # what it hands over is recorded (see `close`).
        round_ = asyncio.ensure_future(self._deliver_claimed(batch, context))
        self._rounds.add(round_)

        def finished(done: "asyncio.Future[int]") -> None:
            self._rounds.discard(done)
            renewal.cancel()
        round_.add_done_callback(finished)
        try:
            return await asyncio.shield(round_)
        except asyncio.CancelledError:
            round_.add_done_callback(_report_unawaited)  # nobody awaits it any more
            raise

    async def _keep_claim(self, ids: list[str]) -> None:
        """Renew the round's claim on `ids` every CLAIM_RENEW_EVERY seconds until cancelled."""
        while True:
            await asyncio.sleep(CLAIM_RENEW_EVERY)
            try:
                await self.service.transaction(_renew_claim, ids)
            except Exception as exc:
                log.warning("could not renew the claim on a round of notifications", error=repr(exc),
                            notifications=len(ids))

    async def _deliver_claimed(self, batch: "list[Row[Any]]", context: "Context") -> int:
        outcomes: list[tuple[str, str, str]] = []
        mails: list[tuple[str, str, bytes]] = []  # handed over together, in order, after the loop
        mailed: list[str] = []
        for notification in batch:
            try:
                if notification.kind == "webhook":
                    await self._webhook(notification, context)
                else:
                    mails.append(await self._email(notification, context))
                    mailed.append(notification.id)
                    continue
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
        if mails:
            for notification_id, error in zip(mailed, await self.transport.send_many(mails), strict=True):
                outcomes.append((notification_id, "sent", "") if error is None
                                else (notification_id, "failed_try", str(error)[:500]))
        settings = self.service.settings
        await self.service.transaction(_record, batch, outcomes, settings.notification_max_attempts,
                                       settings.notification_backoff)
        return sum(1 for _, outcome, _ in outcomes if outcome == "sent")

    async def _portal(self, slug: str) -> PortalInfo:
        cached = self._portals.get(slug)
        if cached and time.monotonic() - cached[0] < PORTAL_CACHE_SECONDS:
            return cached[1]
        info = await self.service.client.call(operations.auth.portal_info, GetPortalInfo(portal=slug))
        self._portals[slug] = (time.monotonic(), info)
        return info

    async def _email(self, notification: "Row[Any]", context: "Context") -> tuple[str, str, bytes]:
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
        message_id = notification.email_message_id or ""
        thread = context.references.setdefault(conversation_id, [])
        sender = self._sender(portal.slug)
        message = compose.reply_email(compose.Reply(
            to=recipient.email, to_name=recipient.display_name, portal=portal.slug, portal_name=portal.name,
            conversation_id=conversation_id, subject=notification.subject, body=notification.body,
            message_id=message_id, references=[m for m in thread if m != message_id],
            reply_to=_reply_address(self.secret, conversation_id, settings.reply_domain), sender=sender,
            conversation_url=f"{settings.resolved_public_url}/portals/{portal.slug}/conversations/{conversation_id}"))
        if message_id and message_id not in thread:
            thread.append(message_id)  # a later answer of the same round threads under this one
        return bounces_to, recipient.email, compose.as_bytes(message)

    @property
    def http(self) -> httpx.AsyncClient:
        """The client of channel webhooks, made when first needed."""
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=10.0)
        return self._http

    def _sender(self, portal: str | None) -> str:
        settings = self.service.settings
        return settings.mail_from or f"{portal or 'support'}@{settings.reply_domain}"

    async def _webhook(self, notification: "Row[Any]", context: "Context") -> None:
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

NOTIFICATIONS: Table = Notification.__table__  # type: ignore[attr-defined]
CUSTOMERS: Table = Customer.__table__  # type: ignore[attr-defined]
THREAD: Table = ThreadMessage.__table__  # type: ignore[attr-defined]
WEBHOOKS: Table = ChannelWebhook.__table__  # type: ignore[attr-defined]


@dataclass
class Context:
    """What a round's notifications need from the database, read with the claim: rows with the
    attributes of `Customer` (id, email, display_name) and `ChannelWebhook` (url, secret)."""

    recipients: "dict[str, Row[Any]]"
    references: dict[str, list[str]]
    webhooks: "dict[tuple[str, str], Row[Any]]"


NOTHING = Context({}, {}, {})


def _claim(session: Session, notification_id: str | None, limit: int) -> "tuple[list[Row[Any]], Context]":
    """Due notifications (or the one named), marked as ours for a while so no replica sends them too
    (the same `claimed_until` test in the UPDATE: of two replicas racing for a row one gets it), in the
    order they fell due, with the context their delivery needs."""
    n = NOTIFICATIONS.c
    at = now()
    free = or_(n.claimed_until.is_(None), n.claimed_until < at)
    if notification_id is None:
        which = n.id.in_(select(n.id).where(n.status == "pending", n.next_attempt_at <= at, free)
                         .order_by(n.next_attempt_at).limit(limit))
    else:
        which = n.id == notification_id
    connection = session.connection()
    rows = connection.execute(_claim_statement().where(which, n.status == "pending", free),
                              {"claim_until": at + CLAIM_FOR}).all()
    if not rows:
        return [], NOTHING
    for row in rows:
        if row.last_error == UNKNOWN_OUTCOME:  # set by this claim: any outcome recorded since replaces it
            log.warning("notification taken over from a sender that stopped mid-round; its recipient may get it "
                        "twice, with the same Message-ID", notification_id=row.id, kind=row.kind,
                        purpose=row.purpose, attempts=row.attempts)
    rows.sort(key=lambda row: (row.next_attempt_at, row.id))
    return rows, _context(connection, rows)


@lru_cache(maxsize=1)
def _claim_statement() -> Any:
    """`UPDATE notifications SET claimed_until = :claim_until` (and `last_error = UNKNOWN_OUTCOME` where an
    earlier claim ran out unrecorded: `claimed_until` still set) `RETURNING *`; the caller adds the WHERE."""
    n = NOTIFICATIONS.c
    return (update(NOTIFICATIONS).values(
        claimed_until=bindparam("claim_until"),
        last_error=case((n.claimed_until.is_not(None), UNKNOWN_OUTCOME), else_=n.last_error))
        .returning(*NOTIFICATIONS.c))


def _renew_claim(session: Session, ids: list[str]) -> None:
    """Extend this round's claim on the notifications `ids` that are still claimed (not yet recorded)."""
    n = NOTIFICATIONS.c
    session.connection().execute(update(NOTIFICATIONS).where(n.id.in_(ids), n.claimed_until.is_not(None))
                                 .values(claimed_until=now() + CLAIM_FOR))


def _context(connection: Any, batch: "list[Row[Any]]") -> Context:
    customer_ids = {n.recipient_id for n in batch if n.recipient_id}
    conversation_ids = {n.conversation_id for n in batch if n.conversation_id and n.kind == "email"}
    hooks = {(n.org_id, n.channel) for n in batch if n.kind == "webhook" and n.org_id and n.channel}
    references: dict[str, list[str]] = {}
    if conversation_ids:
        t = THREAD.c
        for message_id, conversation_id in connection.execute(
                select(t.email_message_id, t.conversation_id).where(t.conversation_id.in_(conversation_ids))
                .order_by(t.created_at)):
            references.setdefault(conversation_id, []).append(message_id)
    c, w = CUSTOMERS.c, WEBHOOKS.c
    recipients = {row.id: row for row in connection.execute(
        select(c.id, c.email, c.display_name).where(c.id.in_(customer_ids)))} if customer_ids else {}
    webhooks = {}
    for org_id, channel in hooks:
        hook = connection.execute(select(w.url, w.secret).where(w.org_id == org_id, w.channel == channel)).first()
        if hook is not None:
            webhooks[(org_id, channel)] = hook
    return Context(recipients=recipients, references=references, webhooks=webhooks)


def _record(session: Session, batch: "list[Row[Any]]", outcomes: list[tuple[str, str, str]], max_attempts: int,
            backoff: tuple[float, ...]) -> None:
    """Every outcome of a round: executemany UPDATEs of the rows, one INSERT of the thread's new
    Message-IDs, and the events."""
    n = NOTIFICATIONS.c
    connection = session.connection()
    claimed = {row.id: row for row in batch}
    current = {row.id: row for row in connection.execute(
        select(n.id, n.status, n.attempts).where(n.id.in_([o[0] for o in outcomes])))}
    at = now()
    changes: list[dict[str, Any]] = []
    threads: list[dict[str, Any]] = []
    events: list[tuple[Event, str, str, int]] = []
    counted = {"sent": 0}

    def sent(notification: "Row[Any]", attempts: int, **more: Any) -> None:
        changes.append({"id": notification.id, "status": "sent", "sent_at": at, "claimed_until": None,
                        "attempts": attempts,
                        "body": "",  # the conversation keeps the text; a code must not outlive its e-mail
                        **more})
        if notification.purpose == "reply" and notification.kind == "email" and notification.email_message_id:
            threads.append({"email_message_id": notification.email_message_id,
                            "conversation_id": notification.conversation_id or "", "created_at": at})
        events.append((NotificationSent(**_event_fields(notification),  # type: ignore[arg-type]
                                        email_message_id=notification.email_message_id, attempts=attempts),
                       notification.org_id or "", notification.id, attempts))
        if notification.kind == "email":
            counted["sent"] += 1
        log.info("notification sent", notification_id=notification.id, kind=notification.kind,
                 purpose=notification.purpose, attempts=attempts)

    for notification_id, outcome, error in outcomes:
        notification, state = claimed[notification_id], current[notification_id]
        attempts = state.attempts + 1
        if state.status == "cancelled":  # its message was redacted while this try was on its way
            if outcome == "sent":  # handed over before the redaction could stop it: say so
                sent(notification, attempts, last_error="the message was redacted after it was handed over")
                log.warning("a redacted message had already been handed over", notification_id=notification.id,
                            conversation_id=notification.conversation_id)
            else:
                changes.append({"id": notification_id, "claimed_until": None})
        elif outcome == "sent":
            sent(notification, attempts)
        elif outcome == "deferred":
            changes.append({"id": notification_id, "claimed_until": None, "last_error": _after(notification, error),
                            "next_attempt_at": at + timedelta(seconds=2)})
        elif attempts >= max_attempts:
            changes.append({"id": notification_id, "attempts": attempts, "claimed_until": None,
                            "last_error": _after(notification, error), "status": "failed"})
            events.append((NotificationFailed(**_event_fields(notification),  # type: ignore[arg-type]
                                              error=error, attempts=attempts),
                           notification.org_id or "", notification_id, attempts))
            if notification.kind == "email":
                email_outcome("failed")
            log.error("notification failed", notification_id=notification_id, kind=notification.kind, error=error,
                      attempts=attempts)
        else:
            wait = backoff[min(attempts - 1, len(backoff) - 1)]
            changes.append({"id": notification_id, "attempts": attempts, "claimed_until": None,
                            "last_error": _after(notification, error), "next_attempt_at": at + timedelta(seconds=wait)})
            log.warning("notification try failed", notification_id=notification_id, kind=notification.kind,
                        error=error, attempts=attempts, retry_in=wait)

    shapes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for change in changes:
        shapes.setdefault(tuple(change), []).append({f"v_{k}": v for k, v in change.items()})
    for shape, params in shapes.items():
        connection.execute(_update_statement(shape), params)
    if threads:
        connection.execute(insert_once_statement(THREAD, "email_message_id", connection.dialect.name), threads)
    if events:
        _record_events(session, events)
    if counted["sent"]:
        email_outcome("sent", counted["sent"])


def _report_unawaited(round_: "asyncio.Future[int]") -> None:
    if not round_.cancelled() and round_.exception() is not None:
        log.warning("a round of notifications failed while the service stopped", error=repr(round_.exception()))


def _after(notification: "Row[Any]", error: str) -> str:
    """A try's error as `last_error`: after UNKNOWN_OUTCOME when the notification carries it (at most 500
    characters), so a later failure does not hide that an earlier try may have arrived."""
    if notification.last_error and notification.last_error.startswith(UNKNOWN_OUTCOME):
        return f"{UNKNOWN_OUTCOME}; then: {error}"[:500]
    return error


def _event_fields(notification: "Row[Any]") -> dict[str, object]:
    return {"notification_id": notification.id, "cause_event_id": notification.cause_event_id,
            "kind": notification.kind, "channel": notification.channel, "conversation_id": notification.conversation_id}


@lru_cache(maxsize=32)
def _update_statement(columns: tuple[str, ...]) -> Any:
    """`UPDATE notifications SET <columns> WHERE id = :v_id`, for executemany with `v_<column>` parameters."""
    return (update(NOTIFICATIONS).where(NOTIFICATIONS.c.id == bindparam("v_id"))
            .values({name: bindparam(f"v_{name}") for name in columns if name != "id"}))


def _record_events(session: Session, events: list[tuple[Event, str, str, int]]) -> None:
    """Each (event, org id, aggregate id, version) into the outbox, in this order, in the caller's
    transaction (`services.runtime.outbox.record_events`: published after commit)."""
    record_events(session, events)


def thread_message(session: Session, email_message_id: str, conversation_id: str, at: datetime) -> None:
    """Remember an e-mail of the conversation (once), for threading and for matching replies."""
    connection = session.connection()
    connection.execute(insert_once_statement(THREAD, "email_message_id", connection.dialect.name),
                       {"email_message_id": email_message_id, "conversation_id": conversation_id, "created_at": at})
