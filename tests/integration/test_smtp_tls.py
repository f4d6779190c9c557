"""Outbound mail to a server that insists on STARTTLS and a login, as real mail relays do."""

import ssl
from urllib.parse import quote

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from services.runtime.nats import free_port
from services.runtime.settings import Settings
from tests.conftest import make_settings
from tests.helpers import count, rows
from tests.kit.conversations import make_demo, start
from tests.kit.mail import Sink, eventually

USER, PASSWORD = "portico", "p@ss word:secret"


class TlsSink(Sink):
    """A sink that offers STARTTLS with a certificate from a private CA and requires AUTH after it."""

    def __init__(self, ca: trustme.CA) -> None:
        super().__init__()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1").configure_cert(context)
        self.logins: list[str] = []
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port, tls_context=context,
                                     require_starttls=True, auth_required=True, auth_require_tls=True,
                                     authenticator=self.authenticate)

    def authenticate(self, server, session, envelope, mechanism, data) -> AuthResult:  # type: ignore[no-untyped-def]
        ok = isinstance(data, LoginPassword) and data.login.decode() == USER and data.password.decode() == PASSWORD
        self.logins.append("ok" if ok else "refused")
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535 itself


@pytest.fixture
def ca(tmp_path):  # type: ignore[no-untyped-def]
    ca = trustme.CA()
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return ca, path


@pytest.fixture
def sink(ca):  # type: ignore[no-untyped-def]
    sink = TlsSink(ca[0]).start()
    yield sink
    sink.stop()


@pytest.fixture(params=["right", "wrong"])
def password(request) -> str:  # type: ignore[no-untyped-def]
    return PASSWORD if request.param == "right" else "not-the-password"


@pytest.fixture
def settings(nats_server, databases, tmp_path, sink, ca, password) -> Settings:  # type: ignore[no-untyped-def]
    url = f"smtp://{USER}:{quote(password, safe='')}@127.0.0.1:{sink.port}?starttls=1&cafile={ca[1]}"
    return make_settings(nats_server.url, databases, tmp_path / "var", smtp_url=url,
                         notification_backoff=(0.2,), notification_max_attempts=2)


async def test_answers_go_out_over_starttls_with_a_login(settings, stack, gateway, sink, password):
    demo = await make_demo(settings, gateway)
    ana = await demo.customer("ana@example.com")
    agent = await demo.staff("agent@example.com", "agent")
    cid = (await start(ana))["id"]
    answered = await agent.post(f"/api/v1/agent/conversations/{cid}/messages", json={"body": "Over TLS"})
    assert answered.status_code == 201, answered.text
    db = settings.database_url("notifications")
    if password == PASSWORD:
        [mail] = await eventually(lambda: sink.to("ana@example.com"))
        assert "Over TLS" in mail.get_body(preferencelist=("plain",)).get_content()
        assert "ok" in sink.logins
    else:
        await eventually(lambda: count(db, "notifications", "status = 'failed'") == 1)
        [(error,)] = rows(db, "SELECT last_error FROM notifications WHERE status = 'failed'")
        assert "refused" in error and password not in error and PASSWORD not in error
        assert sink.messages == []
    await demo.admin.aclose()


def test_the_smtp_url_never_shows_its_password_in_settings():
    settings = Settings(smtp_url=f"smtp://{USER}:{quote(PASSWORD, safe='')}@mail.example.com:587?starttls=1")
    assert PASSWORD not in repr(settings) and quote(PASSWORD, safe="") not in repr(settings)
    assert free_port() > 0
