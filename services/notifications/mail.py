"""Outbound e-mail. In development every message lands in the mail catcher, `<data dir>/mail/`,
one `.eml` file each, so someone trying Portico can read what it sends."""

import asyncio
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

from contracts.rpc import EmailSent, SendEmail
from services.runtime.logging import get_logger
from services.runtime.service import Service

log = get_logger("portico.notifications")

MAIL_FROM = "Portico <support@portico.localhost>"


def compose(request: SendEmail) -> EmailMessage:
    message = EmailMessage()
    message["From"] = MAIL_FROM
    message["To"] = request.to
    message["Subject"] = request.subject
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = make_msgid(domain="portico.localhost")
    message.set_content(request.text)
    return message


def catch(mail_dir: Path, message: EmailMessage) -> Path:
    mail_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    path = mail_dir / f"{stamp}-{message['Message-ID'].strip('<>').split('@')[0]}.eml"
    path.write_bytes(bytes(message))
    return path


async def send_email(service: Service, request: SendEmail) -> EmailSent:
    """Hand one message to the mail catcher (outbound SMTP comes with the e-mail channel)."""
    message = compose(request)
    await asyncio.to_thread(catch, service.settings.data_dir / "mail", message)
    log.info("email sent", kind=request.kind, to_domain=request.to.rpartition("@")[2])
    return EmailSent(message_id=message["Message-ID"])
