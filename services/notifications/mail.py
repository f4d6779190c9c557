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
    """Queue the e-mail (it is then never lost) and try it at once. Its text may hold a secret (an
    access code): it is never logged, and dropped from the row once sent."""
    notification_id = new_id()
    message_id = f"<{notification_id.lower()}@{service.settings.reply_domain}>"

    def queue(session: Session) -> "Row[Any]":
        # Written already claimed by this replica (as `outbound._claim` would mark it), and read back by the
        # same statement: the try below needs no transaction of its own to claim it.
        at = now()
        return session.connection().execute(insert(NOTIFICATIONS).returning(*NOTIFICATIONS.c), {
            "id": notification_id, "cause_event_id": notification_id, "kind": "email", "channel": None,
            "org_id": None, "portal": None, "conversation_id": None, "message_id": None, "recipient_id": None,
            "recipient_email": request.to, "subject": request.subject, "body": request.text, "attachments": [],
            "purpose": request.kind, "email_message_id": message_id, "status": "pending", "attempts": 0,
            "next_attempt_at": at, "claimed_until": at + CLAIM_FOR, "last_error": None, "created_at": at,
            "sent_at": None}).one()

    row = await service.transaction(queue)
    await service.resources["sender"]._deliver([row], NOTHING)  # noqa: SLF001 (a row claimed above)
    log.info("email queued", kind=request.kind, to_domain=request.to.rpartition("@")[2])
    return EmailSent(message_id=message_id)


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
