"""Where notifications go: an SMTP server, the development mail catcher, or a channel's webhook."""

import asyncio
import hashlib
import json
import smtplib
import ssl
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

import httpx

from contracts import signing
from services.runtime.logging import get_logger

log = get_logger("portico.notifications")


class DeliveryError(Exception):
    """A try failed; the message says why, without secrets or message text."""


class MailTransport(Protocol):
    async def send(self, sender: str, recipient: str, data: bytes) -> None: ...

    async def send_many(self, mails: list[tuple[str, str, bytes]]) -> "list[DeliveryError | None]": ...

    async def close(self) -> None: ...


class MailCatcher:
    """Development: every message becomes a `.eml` file under `<data dir>/mail/`."""

    def __init__(self, mail_dir: Path) -> None:
        self.mail_dir = mail_dir

    async def send(self, sender: str, recipient: str, data: bytes) -> None:
        await asyncio.to_thread(self._write, data)

    async def send_many(self, mails: list[tuple[str, str, bytes]]) -> "list[DeliveryError | None]":
        return await asyncio.to_thread(lambda: [self._write_one(data) for _, _, data in mails])

    def _write_one(self, data: bytes) -> "DeliveryError | None":
        try:
            self._write(data)
        except OSError as exc:
            return DeliveryError(f"mail catcher could not write: {type(exc).__name__}")
        return None

    def _write(self, data: bytes) -> None:
        self.mail_dir.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        (self.mail_dir / f"{stamp}-{hashlib.sha256(data).hexdigest()[:12]}.eml").write_bytes(data)

    async def close(self) -> None:
        return None


class SmtpTransport:
    """`smtp://user:pass@host:port?starttls=1` or `smtps://...`, optionally `&cafile=/path/ca.pem` to trust a
    private CA; one connection reused across messages.

    The client is the stdlib's `smtplib`, run in a thread of the transport's own: a round's e-mails go in
    one hop (`send_many`), each over the kept connection, at less than half the CPU of an asyncio client's
    four awaited round trips (measured by `bench/notifications.py`). `starttls=1` insists on STARTTLS;
    otherwise it is used when the server offers it. Certificates are verified (RFC 3207; RFC 8314 for
    `smtps`)."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError("PORTICO_SMTP_URL must look like smtp://user:pass@host:587?starttls=1 or smtps://...")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        self.hostname = parts.hostname
        self.port = parts.port or (465 if parts.scheme == "smtps" else 25)
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.use_tls = parts.scheme == "smtps"
        self.start_tls = query.get("starttls", "0").lower() in ("1", "true", "yes")
        self.cafile = query.get("cafile") or None
        self.timeout = timeout
        self._client: smtplib.SMTP | None = None
        self._context: ssl.SSLContext | None = None  # made when TLS is first used (loading the CAs costs ~80 ms)
        # One thread, hence one send at a time over the one connection, in the order asked.
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="smtp")

    async def send(self, sender: str, recipient: str, data: bytes) -> None:
        [error] = await self.send_many([(sender, recipient, data)])
        if error is not None:
            raise error

    async def send_many(self, mails: list[tuple[str, str, bytes]]) -> list["DeliveryError | None"]:
        """Hand over each (envelope sender, recipient, message bytes), in order; for each, None when the server
        took it, else the DeliveryError saying why (without secrets or message text)."""
        return await asyncio.get_running_loop().run_in_executor(self._thread, self._send_all, mails)

    def _send_all(self, mails: list[tuple[str, str, bytes]]) -> list["DeliveryError | None"]:
        return [self._send_one(*mail) for mail in mails]

    def _connected(self) -> smtplib.SMTP:
        if self._client is not None:
            return self._client
        client: smtplib.SMTP
        if self.use_tls:
            client = smtplib.SMTP_SSL(self.hostname, self.port, timeout=self.timeout, context=self._tls())
        else:
            client = smtplib.SMTP(self.hostname, self.port, timeout=self.timeout)
        try:
            client.ehlo()
            if not self.use_tls and (self.start_tls or client.has_extn("starttls")):
                client.starttls(context=self._tls())  # raises SMTPNotSupportedError when not offered
                client.ehlo()
            if self.username:
                client.login(self.username, self.password or "")
        except BaseException:
            client.close()
            raise
        self._client = client
        return client

    def _tls(self) -> ssl.SSLContext:
        if self._context is None:
            self._context = ssl.create_default_context(cafile=self.cafile)
        return self._context

    def _send_one(self, sender: str, recipient: str, data: bytes) -> "DeliveryError | None":
        for attempt in (1, 2):  # a reused connection the server dropped: reconnect once
            try:
                self._connected().sendmail(sender, [recipient], data)
                return None
            except (smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError) as exc:
                self._drop()
                if attempt == 2:
                    return DeliveryError(f"mail server {self.hostname}:{self.port} unreachable: "
                                         f"{type(exc).__name__}")
            except smtplib.SMTPException as exc:  # an answer: refused, or a login or extension it lacks
                self._drop()
                return DeliveryError(f"mail server refused the message: {_answer(exc)[:200]}")
            except OSError as exc:  # connection refused or reset, timeout, TLS failure
                self._drop()
                if attempt == 2:
                    return DeliveryError(f"mail server {self.hostname}:{self.port} unreachable: "
                                         f"{type(exc).__name__}")
            except Exception as exc:  # an address smtplib cannot write (not ASCII): this e-mail's try fails
                self._drop()
                return DeliveryError(f"the e-mail could not be handed over: {type(exc).__name__}")
        return None  # not reached

    def _drop(self) -> None:
        if self._client is not None:
            try:
                self._client.close()
            except Exception:
                pass
        self._client = None

    def _quit(self) -> None:
        if self._client is not None:
            try:
                self._client.quit()
            except Exception:
                pass
        self._drop()

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._thread, self._quit)
        self._thread.shutdown(wait=False)


def _answer(exc: smtplib.SMTPException) -> str:
    """The server's answer in an smtplib error: code and text (a refused recipient's, for a refused list)."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused) and exc.recipients:
        code, text = next(iter(exc.recipients.values()))
        return f"{code} {text.decode(errors='replace') if isinstance(text, bytes) else text}"
    if isinstance(exc, smtplib.SMTPResponseException):
        text = exc.smtp_error
        return f"{exc.smtp_code} {text.decode(errors='replace') if isinstance(text, bytes) else text}"
    return str(exc)


def mail_transport(smtp_url: str | None, mail_dir: Path) -> MailTransport:
    return SmtpTransport(smtp_url) if smtp_url else MailCatcher(mail_dir)


async def post_webhook(client: httpx.AsyncClient, url: str, secret: str, delivery_id: str, payload: dict) -> None:
    """POST the payload signed with the org's secret; a 2xx answer is delivered."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    timestamp = str(int(time.time()))
    try:
        response = await client.post(url, content=body, headers={
            "content-type": "application/json", signing.TIMESTAMP_HEADER: timestamp,
            signing.SIGNATURE_HEADER: signing.sign(secret, timestamp, body), "X-Portico-Delivery": delivery_id})
    except httpx.HTTPError as exc:
        raise DeliveryError(f"webhook unreachable: {type(exc).__name__}") from exc
    if not 200 <= response.status_code < 300:
        raise DeliveryError(f"webhook answered {response.status_code}")
