"""Reply e-mails in: an SMTP server (aiosmtpd) for the reply domain.

An e-mail is answered `250` only once its `EmailReceived` event is committed (outbox), so an
accepted e-mail is never lost. What happens to each kind of mail (README, "How inbound e-mail is
handled"):

- a bounce (null envelope sender, MAILER-DAEMON/postmaster, `multipart/report`) marks the e-mail
  it is about `bounced` (`bounces.py`) and is never posted;
- automatic mail (out-of-office, autoresponders, lists: `reading.automatic_reason`) is accepted
  and not posted;
- a reply is matched by reply address, `In-Reply-To`/`References` or subject tag; a new e-mail to
  `<portal>@<reply domain>` starts a conversation;
- the text is the new part of the reply (`reading.body_text`), held to the portal's limits: over
  `max_body_chars` it is refused with `552` saying the limit, so the sender's server returns it;
- a file that is not allowed (or over the portal's file limits) is dropped and named, with the
  reason, under the posted text; `winmail.dat` is unpacked and a forwarded e-mail quoted.

Anything refused gets a permanent SMTP error (5xx) and leaves nothing stored in any service: no
account is made before the e-mail is accepted. Only a fault on Portico's side (NATS or a database
away) answers `451`, so the sender's server tries again later.
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
from sqlmodel import Session, col, select

from contracts import operations
from contracts.conversations import GetMessageLimits
from contracts.emails import normalize_email
from contracts.envelope import new_id
from contracts.errors import ServiceError
from contracts.events import AttachmentRef, EmailReceived
from contracts.rpc import EnsureCustomer, GetPortalInfo
from services.notifications import bounces, reading, tokens
from services.notifications.models import Conversation, Customer, Participant, ReceivedEmail, ThreadMessage
from services.runtime.logging import get_logger
from services.runtime.objects import delete_attachments, store_attachments
from services.runtime.outbox import record_event
from services.runtime.service import Service

log = get_logger("portico.notifications")

SUBJECT_TAG = re.compile(r"\[#([0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{26})\]")
MESSAGE_ID = re.compile(r"<[^<>\s]+>")


class Refused(Exception):
    """The e-mail is refused for good: `reply` is the SMTP answer (a 5xx code and the true reason)."""

    def __init__(self, reply: str) -> None:
        super().__init__(reply)
        self.reply = reply


@dataclass
class Match:
    how: str
    conversation: Conversation | None
    portal: str
    org_id: str
    customer_id: str | None  # None: a new sender, whose account is made once the e-mail is accepted


def _is_reply(recipients: list[str], message: EmailMessage) -> bool:
    return (any(r.lower().startswith(tokens.PREFIX) for r in recipients)
            or bool(MESSAGE_ID.findall(f"{message.get('In-Reply-To', '')} {message.get('References', '')}"))
            or bool(SUBJECT_TAG.search(reading.header_text(message, "Subject"))))


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
            await self.accept(envelope.rcpt_tos, envelope.original_content or envelope.content or b"",
                              envelope_sender=envelope.mail_from or "")
        except Refused as refused:
            log.info("inbound e-mail refused", reason=refused.reply)
            return refused.reply
        except Exception as exc:  # our side is broken: the sender's server keeps the mail and retries
            log.error("inbound e-mail failed", error=repr(exc), exc_info=exc)
            return "451 4.3.0 Temporary failure; try again later"
        return "250 2.0.0 Accepted"

    async def accept(self, recipients: list[str], raw: bytes, envelope_sender: str = "sender@invalid") -> None:
        """Accept (return), or refuse (`Refused`) an e-mail for good. Raises anything else only for
        a fault on Portico's side (the caller answers 451)."""
        try:
            message = BytesParser(policy=policy.default).parsebytes(raw)
            assert isinstance(message, EmailMessage)
            bounce = reading.bounce_of(message, envelope_sender)
            automatic = None if bounce else reading.automatic_reason(message, is_reply=_is_reply(recipients, message))
        except Exception as exc:  # the same bytes fail the same way next time: say so for good
            log.error("inbound e-mail could not be read", error=repr(exc), exc_info=exc)
            raise Refused("554 5.6.0 The message could not be read") from exc
        if bounce is not None:
            await bounces.record_bounce(self.service, bounce, recipients, self.secret)
            return
        if automatic is not None:
            log.info("automatic e-mail ignored", reason=automatic)  # vacation replies must not loop or reopen
            return
        written_sender = reading.sender_address(message)
        if not written_sender:
            raise Refused("550 5.1.7 The message has no sender address")
        try:  # the one spelling of an address every way in uses (NFKC, IDNA domain, case)
            sender = normalize_email(written_sender)
        except ValueError as exc:
            raise Refused(f"550 5.1.7 The sender address cannot be used: {exc}") from exc
        email_id = (MESSAGE_ID.findall(reading.header_text(message, "Message-ID")) or
                    [f"<{hashlib.sha256(raw).hexdigest()[:32]}@{self.domain}>"])[0][:300]
        if await self.service.read(lambda s: s.get(ReceivedEmail, email_id)) is not None:
            log.info("duplicate e-mail ignored")
            return
        match = await self._match(recipients, message, sender)
        limits = await self.service.client.call(operations.conversations.message_limits, GetMessageLimits(
            org_id=match.org_id, portal=match.portal,
            conversation_id=match.conversation.id if match.conversation else None))
        try:
            post = reading.posting(message, max_files=limits.max_files, max_file_bytes=limits.max_file_bytes)
        except Exception as exc:
            log.error("inbound e-mail could not be read", error=repr(exc), exc_info=exc)
            raise Refused("554 5.6.0 The message could not be read") from exc
        if len(post.written) > limits.max_body_chars:
            raise Refused(f"552 5.3.4 Your message has {len(post.written):,} characters without the quoted "
                          f"earlier messages; this support portal takes at most {limits.max_body_chars:,}. "
                          "Please shorten it, or send the rest in a second e-mail.")
        if not post.written and not post.files:
            reason = " ".join(post.dropped)
            raise Refused(f"550 5.7.1 {reason[:300]}" if reason else "550 5.6.0 The message has no text")
        body, accepted, dropped = post.text, post.files, post.dropped
        subject = reading.header_text(message, "Subject")[:200] or "(no subject)"
        refs = await store_attachments(self.service.broker.config.connection_state.stream, accepted)
        try:
            customer_id = match.customer_id or await self._new_customer(match, message, sender)
            event = EmailReceived(
                email_message_id=email_id, portal=match.portal,
                conversation_id=match.conversation.id if match.conversation else None, customer_id=customer_id,
                from_email=sender, conversation_subject=SUBJECT_TAG.sub("", subject).strip() or "(no subject)",
                body=body or "(files attached)", attachments=refs, matched_by=match.how)  # type: ignore[arg-type]

            def commit(session: Session) -> None:
                session.add(ReceivedEmail(email_message_id=email_id, from_email=sender, matched_by=match.how,
                                          created_at=datetime.now(UTC)))
                session.flush()
                record_event(session, event, org_id=match.org_id, aggregate_id=new_id(), aggregate_version=1)

            await self.service.transaction(commit)
        except Exception:
            await self._forget(refs)
            raise
        log.info("inbound e-mail accepted", matched_by=match.how, files=len(refs), files_dropped=len(dropped),
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
        tagged = SUBJECT_TAG.search(reading.header_text(message, "Subject"))
        if tagged and await self.service.read(lambda s: s.get(Conversation, tagged.group(1).upper())):
            return await self._reply(tagged.group(1).upper(), "subject_tag", sender)
        # A new message to a portal's own address, `<portal>@<reply domain>`.
        portal_slug = next((a.lower().rpartition("@")[0] for a in recipients), "")
        try:
            portal = await self.service.client.call(operations.auth.portal_info, GetPortalInfo(portal=portal_slug))
        except ServiceError as exc:
            if exc.code.value in ("unknown_portal", "invalid_request"):
                raise Refused(f"550 5.1.1 {exc.message}") from exc
            raise
        return Match("new", None, portal.slug, portal.org_id, None)

    async def _new_customer(self, match: Match, message: EmailMessage, sender: str) -> str:
        """The sender's account, made now that the e-mail is accepted (auth makes it once)."""
        try:
            customer = await self.service.client.call(operations.auth.ensure_customer, EnsureCustomer(
                org_id=match.org_id, portal=match.portal, email=sender,
                display_name=next((n for n, _ in getaddresses([reading.header_text(message, "From")]) if n), None)))
        except ServiceError as exc:
            if exc.code.value in ("invalid_email", "invalid_request"):
                raise Refused(f"550 5.1.7 {exc.message}") from exc
            raise
        return customer.user_id

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
