"""Real SMTP servers for the tests: a sink that keeps what Portico sends, and a client that sends
e-mail into Portico's inbound SMTP server."""

import asyncio
from email import message_from_bytes, policy
from email.message import EmailMessage

import aiosmtplib
from aiosmtpd.controller import Controller

from services.runtime.nats import free_port


class Sink:
    """An SMTP server on a free port that keeps every message it accepts (`fail` refuses them)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.messages: list[EmailMessage] = []
        self.envelope_senders: dict[str, str] = {}  # Message-ID -> MAIL FROM
        self.fail = False
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server, session, envelope) -> str:  # type: ignore[no-untyped-def]
        if self.fail:
            return "451 4.3.0 Try again later"
        message = message_from_bytes(envelope.content, policy=policy.default)  # type: ignore[arg-type]
        self.envelope_senders[str(message["Message-ID"])] = envelope.mail_from
        self.messages.append(message)  # type: ignore[arg-type]
        return "250 OK"

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> "Sink":
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if address in str(m["To"])]


async def send_mail(port: int, message: EmailMessage, recipients: list[str] | None = None) -> tuple[int, str]:
    """Send into Portico; (code, text) of the server's final answer."""
    return await _answer(port, lambda client: client.send_message(message, recipients=recipients))


async def send_raw(port: int, envelope_sender: str, recipients: list[str], raw: bytes) -> tuple[int, str]:
    """Send bytes as they are (MAIL FROM `envelope_sender`, "" for the null sender of a bounce);
    (code, text) of the server's final answer."""
    return await _answer(port, lambda client: client.sendmail(envelope_sender, recipients, raw))


async def _answer(port: int, send) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=15)
    await client.connect()
    try:
        _, response = await send(client)
        return 250, response
    except aiosmtplib.SMTPRecipientsRefused as exc:
        return exc.recipients[0].code, exc.recipients[0].message
    except aiosmtplib.SMTPResponseException as exc:
        return exc.code, exc.message
    finally:
        try:
            await client.quit()
        except Exception:
            pass


async def eventually(predicate, timeout: float = 15.0):  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not within {timeout}s")
        await asyncio.sleep(0.05)
