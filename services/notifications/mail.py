"""E-mail other services ask for (access codes), and the development mail catcher's listing."""

import asyncio
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

from sqlalchemy import Row, insert
from sqlmodel import Session

from contracts.envelope import new_id
from contracts.errors import ErrorCode, ServiceError
from contracts.notifications import DevMail, DevMailList, ListDevMail
from contracts.rpc import EmailSent, SendEmail
from services.notifications.outbound import CLAIM_FOR, NOTHING, NOTIFICATIONS
from services.runtime.clock import now
from services.runtime.logging import get_logger
from services.runtime.service import Service

log = get_logger("portico.notifications")


async def send_email(service: Service, request: SendEmail) -> EmailSent:
    """Queue the e-mail (it is then never lost) and try it at once; answers after that try. Its text may
    hold a secret (an access code): it is never logged, and dropped from the row once sent.

    Served several at once (the operation is `concurrent`), requests go in rounds: those that come while
    a round runs go together in the next, where one transaction queues them, one hand-over tries them
    in the order asked and one transaction records the outcomes (as the sender's rounds do); a request
    that finds no round running starts one at once. Raises what queueing or the try raised (a queued
    row is then retried by the sender once its claim runs out, `outbound.CLAIM_FOR`)."""
    notification_id = new_id()
    message_id = f"<{notification_id.lower()}@{service.settings.reply_domain}>"
    await service.resources["direct_email"].submit({
        "id": notification_id, "cause_event_id": notification_id, "kind": "email", "channel": None,
        "org_id": None, "portal": None, "conversation_id": None, "message_id": None, "recipient_id": None,
        "recipient_email": request.to, "subject": request.subject, "body": request.text, "attachments": [],
        "purpose": request.kind, "email_message_id": message_id, "status": "pending", "attempts": 0,
        "last_error": None, "sent_at": None})
    log.info("email queued", kind=request.kind, to_domain=request.to.rpartition("@")[2])
    return EmailSent(message_id=message_id)


def _queue(session: Session, values: list[dict[str, Any]]) -> "list[Row[Any]]":
    """Insert the notifications `values`, already claimed by this replica (as `outbound._claim` would mark
    them), and read them back by the same statement, in the order given: their try needs no transaction
    of its own to claim them."""
    at = now()
    rows = [{**value, "next_attempt_at": at, "claimed_until": at + CLAIM_FOR, "created_at": at} for value in values]
    return list(session.connection().execute(
        insert(NOTIFICATIONS).returning(*NOTIFICATIONS.c, sort_by_parameter_order=True), rows).all())


class DirectRounds:
    """The rounds of `send_email`: what is asked while one round runs waits for the next."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.waiting: list[tuple[dict[str, Any], asyncio.Future[None]]] = []
        self.task: asyncio.Task[None] | None = None

    async def submit(self, values: dict[str, Any]) -> None:
        """Queue and try the notification `values` (the columns of a pending e-mail but its times)."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiting.append((values, done))
        if self.task is None:
            self.task = asyncio.create_task(self._run())
        await done

    async def _run(self) -> None:
        batch: list[tuple[dict[str, Any], asyncio.Future[None]]] = []
        try:
            while self.waiting:
                batch, self.waiting = self.waiting, []
                error: BaseException | None = None
                try:
                    rows = await self.service.transaction(_queue, [values for values, _ in batch])
                    await self.service.resources["sender"]._deliver(rows, NOTHING)  # noqa: SLF001 (claimed above)
                except Exception as exc:
                    error = exc
                for _, done in batch:
                    if not done.done():
                        if error is None:
                            done.set_result(None)
                        else:
                            done.set_exception(error)
        finally:
            self.task = None
            # Stopped mid-round: no request waits for ever (a row already queued is tried by the sender).
            unsettled, self.waiting = [done for _, done in batch + self.waiting if not done.done()], []
            for done in unsettled:
                done.set_exception(ServiceError(ErrorCode.service_unavailable,
                                                "The e-mail service is stopping; try again."))


def _read_catcher(mail_dir: Path, limit: int) -> list[DevMail]:
    files = sorted(mail_dir.glob("*.eml"), reverse=True)[:limit] if mail_dir.exists() else []
    mails = []
    for path in files:
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        part = message.get_body(preferencelist=("plain", "html"))
        mails.append(DevMail(file=path.name, to=str(message["To"] or ""), subject=str(message["Subject"] or ""),
                             date=str(message["Date"] or ""), text=part.get_content() if part else ""))
    return mails


async def list_dev_mail(service: Service, request: ListDevMail) -> DevMailList:
    if service.settings.env != "dev" or service.settings.smtp_url is not None:
        raise ServiceError(ErrorCode.not_found, "The mail catcher runs only in development without PORTICO_SMTP_URL.")
    return DevMailList(mails=await asyncio.to_thread(_read_catcher, service.settings.data_dir / "mail",
                                                     request.limit))
