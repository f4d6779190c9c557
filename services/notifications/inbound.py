"""Reply e-mails in: an SMTP server (aiosmtpd) for the reply domain.

An e-mail is answered `250` only once its `EmailReceived` event is committed (outbox), so an
accepted e-mail is never lost; anything wrong with it (a forged reply address, a sender who is not
in the conversation, a refused attachment, too big) is answered with an SMTP error and nothing is
stored, so the sender's mail server tells them.
"""

import asyncio
import errno
import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import getaddresses

from aiosmtpd.smtp import SMTP, Envelope
from aiosmtpd.smtp import Session as SmtpSession
from bs4 import BeautifulSoup
from mailparser_reply import EmailReplyParser
from sqlmodel import Session, col, select

from contracts.envelope import new_id
from contracts.errors import ErrorCode, ServiceError
from contracts.events import AttachmentRef, EmailReceived
from contracts.rpc import CustomerAccount, EnsureCustomer, GetPortalInfo, PortalInfo
from services.notifications import tokens
from services.notifications.models import Conversation, Customer, Participant, ReceivedEmail, ThreadMessage
from services.runtime.files import FileRefused, check_files
from services.runtime.logging import get_logger
from services.runtime.objects import delete_attachments, store_attachments
from services.runtime.outbox import record_event
from services.runtime.service import Service

log = get_logger("portico.notifications")

REPLY_LANGUAGES = ["en", "de", "fr", "es", "it", "nl", "pt", "sv"]
SUBJECT_TAG = re.compile(r"\[#([0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{26})\]")
MESSAGE_ID = re.compile(r"<[^<>\s]+>")
# Where mail clients put the earlier thread in HTML: Gmail, Apple Mail/Thunderbird, Outlook.
HTML_QUOTES = "div.gmail_quote, blockquote[type=cite], div.moz-cite-prefix, blockquote.gmail_quote"
OUTLOOK_QUOTE_START = "#divRplyFwdMsg, #appendonsend, hr#stopSpelling"


class Refused(Exception):
    def __init__(self, reply: str) -> None:
        super().__init__(reply)
        self.reply = reply


@dataclass
class Match:
    how: str
    conversation: Conversation | None
    portal: str
    org_id: str
    customer_id: str


def visible_text(message: EmailMessage) -> str:
    """The new text of a reply: the quoted earlier thread and the signature cut off."""
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    content = part.get_content()
    if part.get_content_type() == "text/html":
        soup = BeautifulSoup(content, "html.parser")
        for start in soup.select(OUTLOOK_QUOTE_START):  # Outlook: the quote is everything after this
            for later in list(start.find_all_next()):
                later.decompose()
            start.decompose()
        for quote in soup.select(HTML_QUOTES):
            quote.decompose()
        for br in soup.find_all("br"):
            br.replace_with("\n")
        content = soup.get_text("\n")
    content = re.sub(r"\n{3,}", "\n\n", content.replace("\r\n", "\n"))
    replies = EmailReplyParser(languages=REPLY_LANGUAGES).read(text=content).replies
    return (replies[0].body if replies else content).strip()


class InboundMail:
    """aiosmtpd handler."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.domain = service.settings.reply_domain.lower()
        self.secret = tokens.token_secret(service.settings)

    async def handle_RCPT(self, server: SMTP, session: SmtpSession, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        if not address.lower().endswith("@" + self.domain):
            return "550 5.1.1 No such mailbox here"
        if len(envelope.rcpt_tos) >= 10:
            return "452 4.5.3 Too many recipients"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: SmtpSession, envelope: Envelope) -> str:
        try:
            await self.accept(envelope.rcpt_tos, envelope.original_content or envelope.content or b"")
        except Refused as refused:
            log.info("inbound e-mail refused", reason=refused.reply)
            return refused.reply
        except Exception as exc:  # our side is broken: the sender's server keeps the mail and retries
            log.error("inbound e-mail failed", error=repr(exc), exc_info=exc)
            return "451 4.3.0 Temporary failure; try again later"
        return "250 2.0.0 Accepted"

    async def accept(self, recipients: list[str], raw: bytes) -> None:
        message = BytesParser(policy=policy.default).parsebytes(raw)
        assert isinstance(message, EmailMessage)
        if str(message.get("Auto-Submitted", "no")).lower() != "no":
            log.info("automatic e-mail ignored")  # vacation replies and bounces must not loop
            return
        senders = [addr for _, addr in getaddresses([str(message.get("From", ""))]) if "@" in addr]
        if not senders:
            raise Refused("550 5.1.7 The message has no sender address")
        sender = senders[0].lower()
        email_id = (MESSAGE_ID.findall(str(message.get("Message-ID", ""))) or
                    [f"<{hashlib.sha256(raw).hexdigest()[:32]}@{self.domain}>"])[0]
        if await self.service.read(lambda s: s.get(ReceivedEmail, email_id)) is not None:
            log.info("duplicate e-mail ignored")
            return
        match = await self._match(recipients, message, sender)
        body = visible_text(message)
        refs = await self._attachments(message)
        if not body and not refs:
            await self._forget(refs)
            raise Refused("550 5.6.0 The message has no text")
        subject = " ".join(str(message.get("Subject", "")).split())[:200] or "(no subject)"
        event = EmailReceived(
            email_message_id=email_id, portal=match.portal,
            conversation_id=match.conversation.id if match.conversation else None, customer_id=match.customer_id,
            from_email=sender, conversation_subject=SUBJECT_TAG.sub("", subject).strip() or "(no subject)",
            body=body or "(files attached)", attachments=refs, matched_by=match.how)  # type: ignore[arg-type]

        def commit(session: Session) -> None:
            session.add(ReceivedEmail(email_message_id=email_id, from_email=sender, matched_by=match.how,
                                      created_at=datetime.now(UTC)))
            session.flush()
            record_event(session, event, org_id=match.org_id, aggregate_id=new_id(), aggregate_version=1)

        try:
            await self.service.transaction(commit)
        except Exception:
            await self._forget(refs)
            raise
        log.info("inbound e-mail accepted", matched_by=match.how,
                 conversation_id=match.conversation.id if match.conversation else None)

    async def _match(self, recipients: list[str], message: EmailMessage, sender: str) -> Match:
        for address in recipients:
            if address.lower().startswith(tokens.PREFIX):
                conversation_id = tokens.conversation_of(self.secret, address, self.domain)
                if conversation_id is None:
                    raise Refused("550 5.7.1 Unknown or forged reply address")
                return await self._reply(conversation_id, "reply_token", sender)
        threaded = MESSAGE_ID.findall(f"{message.get('In-Reply-To', '')} {message.get('References', '')}")
        if threaded:
            conversation_id = await self.service.read(_thread_of, threaded)
            if conversation_id:
                return await self._reply(conversation_id, "in_reply_to", sender)
        tagged = SUBJECT_TAG.search(str(message.get("Subject", "")))
        if tagged and await self.service.read(lambda s: s.get(Conversation, tagged.group(1).upper())):
            return await self._reply(tagged.group(1).upper(), "subject_tag", sender)
        # A new message to a portal's own address, `<portal>@<reply domain>`.
        portal_slug = next((a.lower().rpartition("@")[0] for a in recipients), "")
        try:
            portal = await self.service.client.call("auth", "portal_info", GetPortalInfo(portal=portal_slug),
                                                    PortalInfo)
            customer = await self.service.client.call("auth", "ensure_customer", EnsureCustomer(
                org_id=portal.org_id, portal=portal.slug, email=sender,
                display_name=next((n for n, _ in getaddresses([str(message.get("From", ""))]) if n), None)),
                CustomerAccount)
        except ServiceError as exc:
            if exc.code.value in ("unknown_portal", "invalid_email", "invalid_request"):
                raise Refused(f"550 5.1.1 {exc.message}") from exc
            raise
        return Match("new", None, portal.slug, portal.org_id, customer.user_id)

    async def _reply(self, conversation_id: str, how: str, sender: str) -> Match:
        def check(session: Session) -> Match:
            conversation = session.get(Conversation, conversation_id)
            if conversation is None:
                raise Refused("550 5.1.1 Unknown conversation")
            customers = session.exec(select(Customer).where(Customer.org_id == conversation.org_id,
                                                            Customer.email == sender)).all()
            allowed = {p.customer_id for p in session.exec(select(Participant).where(
                Participant.conversation_id == conversation_id)).all()}
            writer = next((c for c in customers if c.id in allowed), None)
            if writer is None:
                raise Refused("550 5.7.1 Only the people in this conversation can answer it")
            return Match(how, conversation, conversation.portal, conversation.org_id, writer.id)

        return await self.service.read(check)

    async def _attachments(self, message: EmailMessage) -> list[AttachmentRef]:
        """The e-mail's files, held to the same checks as portal uploads, stored once all pass."""
        settings = self.service.settings
        files = [(part.get_filename() or "attachment", part.get_payload(decode=True) or b"")
                 for part in message.iter_attachments()]
        try:
            checked = check_files(files, max_files=settings.max_attachments,
                                  max_file_bytes=settings.max_attachment_bytes)
        except FileRefused as exc:
            status = "552 5.3.4" if exc.code in (ErrorCode.too_many_attachments, ErrorCode.attachment_too_large) \
                else "550 5.7.1"
            raise Refused(f"{status} {exc.message[:200]}") from exc
        return await store_attachments(self.service.broker.config.connection_state.stream, checked)

    async def _forget(self, refs: list[AttachmentRef]) -> None:
        await delete_attachments(self.service.broker.config.connection_state.stream,
                                 [ref.attachment_id for ref in refs], best_effort=True)


def _thread_of(session: Session, message_ids: list[str]) -> str | None:
    return session.exec(select(ThreadMessage.conversation_id).where(
        col(ThreadMessage.email_message_id).in_(message_ids))).first()


async def serve_smtp(service: Service) -> asyncio.AbstractServer:
    settings = service.settings
    handler = InboundMail(service)
    loop = asyncio.get_running_loop()

    def protocol() -> SMTP:
        return SMTP(handler, data_size_limit=settings.max_inbound_email_bytes, enable_SMTPUTF8=True,
                    hostname=settings.reply_domain, ident="Portico")

    port = settings.inbound_smtp_port
    try:
        server = await loop.create_server(protocol, host=settings.inbound_smtp_host, port=port)
    except OSError as exc:
        if settings.env != "dev" or exc.errno != errno.EADDRINUSE:
            raise
        # Trying Portico next to another mail server: take a free port rather than not start.
        server = await loop.create_server(protocol, host=settings.inbound_smtp_host, port=0)
        port = server.sockets[0].getsockname()[1]
        log.warning("inbound SMTP port taken; using another", wanted=settings.inbound_smtp_port, port=port)
    log.info("inbound SMTP listening", host=settings.inbound_smtp_host, port=port)
    service.resources["smtp_port"] = port
    return server
