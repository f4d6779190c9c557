"""notifications' composition root."""

from contracts.rpc import SendEmail
from services.notifications import mail
from services.runtime.service import Service
from services.runtime.settings import Settings


def build(settings: Settings | None = None, **overrides: object) -> Service:
    service = Service("notifications", settings or Settings(), **overrides)  # type: ignore[arg-type]
    service.rpc("send_email", SendEmail)(mail.send_email)
    return service
