"""Where notifications go: an SMTP server, the development mail catcher, or a channel's webhook."""

import asyncio
import hashlib
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib
import httpx

from contracts import signing
from services.runtime.logging import get_logger

log = get_logger("portico.notifications")


class DeliveryError(Exception):
    """A try failed; the message says why, without secrets or message text."""


class MailTransport(Protocol):
    async def send(self, sender: str, recipient: str, data: bytes) -> None: ...

    async def close(self) -> None: ...


class MailCatcher:
    """Development: every message becomes a `.eml` file under `<data dir>/mail/`."""

    def __init__(self, mail_dir: Path) -> None:
        self.mail_dir = mail_dir

    async def send(self, sender: str, recipient: str, data: bytes) -> None:
        await asyncio.to_thread(self._write, data)

    def _write(self, data: bytes) -> None:
        self.mail_dir.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        (self.mail_dir / f"{stamp}-{hashlib.sha256(data).hexdigest()[:12]}.eml").write_bytes(data)

    async def close(self) -> None:
        return None


class SmtpTransport:
    """`smtp://user:pass@host:port?starttls=1` or `smtps://...`, optionally `&cafile=/path/ca.pem` to trust a
    private CA; one connection reused across messages."""

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
        self._client: aiosmtplib.SMTP | None = None
        self._lock = asyncio.Lock()

    async def _connected(self) -> aiosmtplib.SMTP:
        if self._client is not None and self._client.is_connected:
            return self._client
        # starttls=1 insists on STARTTLS; otherwise it is used when the server offers it.
        start_tls = False if self.use_tls else (True if self.start_tls else None)
        client = aiosmtplib.SMTP(hostname=self.hostname, port=self.port, use_tls=self.use_tls, start_tls=start_tls,
                                 cert_bundle=self.cafile, timeout=self.timeout)
        await client.connect()
        if self.username:
            await client.login(self.username, self.password or "")
        self._client = client
        return client

    async def send(self, sender: str, recipient: str, data: bytes) -> None:
        async with self._lock:
            for attempt in (1, 2):  # a reused connection the server dropped: reconnect once
                try:
                    client = await self._connected()
                    await client.sendmail(sender, [recipient], data)
                    return
                except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPConnectError, ConnectionError,
                        OSError, asyncio.TimeoutError, aiosmtplib.SMTPTimeoutError) as exc:
                    await self._drop()
                    if attempt == 2:
                        raise DeliveryError(f"mail server {self.hostname}:{self.port} unreachable: "
                                            f"{type(exc).__name__}") from exc
                except aiosmtplib.SMTPException as exc:
                    await self._drop()
                    raise DeliveryError(f"mail server refused the message: {str(exc)[:200]}") from exc

    async def _drop(self) -> None:
        if self._client is not None:
            try:
                self._client.close()
            except Exception:
                pass
        self._client = None

    async def close(self) -> None:
        if self._client is not None and self._client.is_connected:
            try:
                await self._client.quit()
            except Exception:
                pass
        self._client = None


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
