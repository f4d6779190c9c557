"""E-mail other services ask for (access codes), and the development mail catcher's listing."""

import asyncio
from datetime import UTC, datetime
from email import message_from_bytes, policy
from pathlib import Path

from sqlmodel import Session

from contracts.envelope import new_id
from contracts.errors import ErrorCode, ServiceError
from contracts.notifications import DevMail, DevMailList, ListDevMail
from contracts.rpc import EmailSent, SendEmail
from services.notifications.models import Notification
from services.runtime.logging import get_logger
from services.runtime.service import Service

log = get_logger("portico.notifications")


async def send_email(service: Service, request: SendEmail) -> EmailSent:
    """Queue the e-mail (it is then never lost) and try it at once. Its text may hold a secret (an
    access code): it is never logged, and dropped from the row once sent."""
    notification_id = new_id()
    message_id = f"<{notification_id.lower()}@{service.settings.reply_domain}>"

    def queue(session: Session) -> None:
        now = datetime.now(UTC)
        session.add(Notification(
            id=notification_id, cause_event_id=notification_id, kind="email", recipient_email=request.to,
            subject=request.subject, body=request.text, purpose=request.kind, email_message_id=message_id,
            status="pending", next_attempt_at=now, created_at=now))

    await service.transaction(queue)
    await service.resources["sender"].deliver(notification_id)
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
