"""A running Portico whose e-mail goes to a real SMTP sink: fixtures `sink`, `settings`, `demo`, and answering as an agent and replying as the customer."""

from email.message import EmailMessage
import pytest
from services.runtime.settings import Settings
from tests.conftest import make_settings
from tests.kit.conversations import make_demo
from tests.kit.mail import Sink


@pytest.fixture
def sink():  # type: ignore[no-untyped-def]
    sink = Sink().start()
    yield sink
    sink.stop()


@pytest.fixture
def settings(nats_server, databases, tmp_path, sink) -> Settings:  # type: ignore[no-untyped-def]
    return make_settings(nats_server.url, databases, tmp_path / "var", smtp_url=sink.url,
                         notification_backoff=(0.2, 0.5), notification_max_attempts=3)


@pytest.fixture
async def demo(settings, stack, gateway):  # type: ignore[no-untyped-def]
    demo = await make_demo(settings, gateway)
    demo.ana = await demo.customer("ana@example.com")
    demo.agent = await demo.staff("agent@example.com", "agent")
    demo.smtp_port = stack["notifications"].resources["smtp_port"]
    yield demo
    await demo.admin.aclose()


async def answer(demo, cid: str, body: str, **extra: object) -> dict:  # type: ignore[no-untyped-def]
    response = await demo.agent.post(f"/api/v1/agent/conversations/{cid}/messages", json={"body": body, **extra})
    assert response.status_code == 201, response.text
    return response.json()


def reply_to(original: EmailMessage, body: str, *, sender: str = "ana@example.com", html: str | None = None,
             headers: bool = True) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = original["Reply-To"]
    message["Subject"] = "Re: " + str(original["Subject"])
    message["Message-ID"] = f"<{abs(hash(body))}@mail.example.com>"
    if headers:
        message["In-Reply-To"] = original["Message-ID"]
        message["References"] = original["Message-ID"]
    if html is None:
        message.set_content(body)
    else:
        message.set_content(html, subtype="html")
    return message
