"""auth's composition root."""

from contracts.events import UserRegistered
from contracts.rpc import StartEmailAccess
from services.auth import handlers
from services.runtime.service import Service
from services.runtime.settings import Settings


def build(settings: Settings | None = None, **overrides: object) -> Service:
    service = Service("auth", settings or Settings(), produces=(UserRegistered,), **overrides)  # type: ignore[arg-type]
    service.rpc("start_email_access", StartEmailAccess)(handlers.start_email_access)
    return service
