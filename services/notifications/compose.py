"""Building the e-mails Portico sends: plain-text and HTML parts from templates, threading headers.

Messages are built with the stdlib's `email` package through its compat32 API (`email.message.Message`,
`email.header`, `email.utils`) and flattened by `BytesGenerator` with CRLF line ends: the same headers and
MIME structure the modern `EmailMessage` API gives, at several times less CPU (the modern API parses every header value
into objects and refolds it; see `bench/notifications.py --profile timings`).
What the modern API did for us is done here explicitly:

* display names and subjects that are not ASCII become RFC 2047 encoded words (`email.header.Header`,
  `email.utils.formataddr`), folded at 78 characters (RFC 5322 2.1.1);
* text parts are UTF-8, `7bit` when they are ASCII with lines of at most 78 characters, else
  quoted-printable (RFC 2045 6.7), so that no mail server needs 8BITMIME;
* a reply is `multipart/alternative` (RFC 2046 5.1.4): the plain text first, the HTML last.
"""

import html
import re
import secrets
from binascii import b2a_qp
from dataclasses import dataclass
from datetime import UTC, datetime
from email.generator import BytesGenerator
from email.header import Header
from email.message import Message
from email.policy import Compat32
from email.utils import format_datetime, formataddr
from functools import cache
from io import BytesIO
from pathlib import Path
from string import Template

TEMPLATES = Path(__file__).parent / "templates"
MAX_LINE = 78  # RFC 5322 2.1.1: lines SHOULD be at most 78 characters


class _Wire(Compat32):
    """compat32 with CRLF line ends, writing a short ASCII header as it is: `email.header.Header`
    (which compat32 runs on every value) is only needed to fold a long one or encode a non-ASCII one."""

    def _fold(self, name, value, sanitize):  # type: ignore[no-untyped-def]
        if (isinstance(value, str) and len(name) + len(value) < MAX_LINE - 1 and value.isascii()
                and "\n" not in value and "\r" not in value):
            return f"{name}: {value}{self.linesep}"
        return super()._fold(name, value, sanitize)


WIRE = _Wire(linesep="\r\n", max_line_length=MAX_LINE)

_LONG_LINE = re.compile(r"[^\n]{%d,}" % (MAX_LINE + 1))


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


def address(display_name: str | None, addr_spec: str) -> str:
    """`Name <addr>` for a header: a name that is not ASCII becomes an RFC 2047 encoded word, one with
    specials is quoted (RFC 5322 3.4); no name gives the bare address. Raises UnicodeEncodeError for an
    address that is not ASCII (RFC 5321 without SMTPUTF8)."""
    return formataddr((" ".join((display_name or "").split()), addr_spec), charset="utf-8")


def text_header(name: str, value: str) -> Header | str:
    """An unstructured header's value (a subject), on one line: as is when ASCII, else RFC 2047 encoded
    words (UTF-8) folded at 78 characters counting `name: `."""
    value = " ".join(value.split())  # a line break in a value must not start another header
    if value.isascii():
        return value
    return Header(value, "utf-8", header_name=name)


def text_part(text: str, subtype: str) -> Message:
    """A `text/<subtype>; charset="utf-8"` part: `7bit` when ASCII with short lines, else quoted-printable
    (the stdlib's `binascii.b2a_qp`: lines of at most 76 characters, RFC 2045 6.7). No `MIME-Version`:
    only the message's own head carries it (RFC 2045 4)."""
    text = text.replace("\r\n", "\n")
    if not text.endswith("\n"):
        text += "\n"  # a text part ends with a line break (as `EmailMessage.set_content` writes it)
    part = Message()
    part["Content-Type"] = f'text/{subtype}; charset="utf-8"'  # what `MIMEText(.., "utf-8")` writes
    if text.isascii() and not _LONG_LINE.search(text):
        part["Content-Transfer-Encoding"] = "7bit"
        part.set_payload(text)
    else:
        part["Content-Transfer-Encoding"] = "quoted-printable"
        part.set_payload(b2a_qp(text.encode(), istext=True).decode("ascii"))
    return part


def _head(message: Message, *, sender: str, to: str, subject: str, message_id: str) -> None:
    message["From"] = sender
    message["To"] = to
    message["Subject"] = text_header("Subject", subject)  # type: ignore[assignment]
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = message_id


def reply_email(reply: Reply) -> Message:
    """An agent's answer: `multipart/alternative` (plain, HTML), threaded under the conversation's e-mails
    (In-Reply-To the newest, References the last 20, RFC 5322 3.6.4), `Reply-To` the signed reply address."""
    plain = template("reply.txt").substitute(
        body=reply.body, portal_name=reply.portal_name, conversation_url=reply.conversation_url)
    rich = template("reply.html").substitute(
        body_html=html.escape(reply.body).replace("\n", "<br>\n"), portal_name=html.escape(reply.portal_name),
        conversation_url=html.escape(reply.conversation_url, quote=True))
    message = Message()
    message["Content-Type"] = f'multipart/alternative; boundary="{boundary(plain, rich)}"'
    message["MIME-Version"] = "1.0"
    subject = reply.subject if reply.subject.lower().startswith("re:") else f"Re: {reply.subject}"
    _head(message, sender=address(reply.portal_name, reply.sender), to=address(reply.to_name, reply.to),
          subject=f"{subject} {subject_tag(reply.conversation_id)}", message_id=reply.message_id)
    message["Reply-To"] = reply.reply_to
    if reply.references:
        message["In-Reply-To"] = reply.references[-1]
        message["References"] = " ".join(reply.references[-20:])
    # A person wrote this answer: no `Auto-Submitted` (RFC 3834 3.1.7 is for mail a program writes),
    # so the customer's vacation responder may tell them it arrived; its reply is recognised on the way in.
    message.set_payload([text_part(plain, "plain"), text_part(rich, "html")])
    return message


def boundary(*texts: str) -> str:
    """A multipart boundary found in none of the texts (RFC 2046 5.1.1). It starts with `=_`, which
    quoted-printable never writes, and is random, so the loop ends at once."""
    while True:
        candidate = f"=_{secrets.token_hex(12)}"
        if not any(candidate in text for text in texts):
            return candidate


def as_bytes(message: Message) -> bytes:
    """The e-mail as sent: CRLF line ends, headers folded at 78 characters (flattened once, here)."""
    out = BytesIO()
    BytesGenerator(out, mangle_from_=False, policy=WIRE).flatten(message)
    return out.getvalue()


def plain_email(*, to: str, subject: str, text: str, sender: str, sender_name: str, message_id: str) -> Message:
    """A message a program writes (an access code): one text part, `Auto-Submitted: auto-generated`
    (RFC 3834 5) so that responders do not answer it."""
    message = text_part(text, "plain")
    _head(message, sender=address(sender_name, sender), to=to, subject=subject, message_id=message_id)
    message["Auto-Submitted"] = "auto-generated"
    message["MIME-Version"] = "1.0"
    return message
