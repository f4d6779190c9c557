"""Building the e-mails Portico sends: plain-text and HTML parts from templates, threading headers."""

import html
from dataclasses import dataclass
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from functools import cache
from pathlib import Path
from string import Template

TEMPLATES = Path(__file__).parent / "templates"


@cache
def template(name: str) -> Template:
    return Template((TEMPLATES / name).read_text())


def subject_tag(conversation_id: str) -> str:
    """In the subject of every reply: a mail client that drops our headers still finds its way back."""
    return f"[#{conversation_id}]"


@dataclass(frozen=True)
class Reply:
    to: str
    to_name: str | None
    portal: str
    portal_name: str
    conversation_id: str
    subject: str
    body: str
    message_id: str
    reply_to: str
    sender: str
    references: list[str]
    conversation_url: str


def reply_email(reply: Reply) -> EmailMessage:
    message = EmailMessage()
    message["From"] = Address(display_name=reply.portal_name, addr_spec=reply.sender)
    message["To"] = Address(display_name=reply.to_name or "", addr_spec=reply.to)
    message["Reply-To"] = reply.reply_to
    subject = reply.subject if reply.subject.lower().startswith("re:") else f"Re: {reply.subject}"
    message["Subject"] = f"{subject} {subject_tag(reply.conversation_id)}"
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = reply.message_id
    if reply.references:
        message["In-Reply-To"] = reply.references[-1]
        message["References"] = " ".join(reply.references[-20:])
    # A person wrote this answer: no `Auto-Submitted` (RFC 3834 3.1.7 is for mail a program writes),
    # so the customer's vacation responder may tell them it arrived; its reply is recognised on the way in.
    values = {"body": reply.body, "portal_name": reply.portal_name, "conversation_url": reply.conversation_url}
    message.set_content(template("reply.txt").substitute(values))
    message.add_alternative(template("reply.html").substitute(
        body_html=html.escape(reply.body).replace("\n", "<br>\n"), portal_name=html.escape(reply.portal_name),
        conversation_url=html.escape(reply.conversation_url, quote=True)), subtype="html")
    return message


def as_bytes(message: EmailMessage) -> bytes:
    """The e-mail as sent: CRLF line ends, long lines folded (flattened once, here)."""
    return message.as_bytes(policy=SMTP)


def plain_email(*, to: str, subject: str, text: str, sender: str, sender_name: str, message_id: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = Address(display_name=sender_name, addr_spec=sender)
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = message_id
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(text)
    return message
