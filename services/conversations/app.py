"""conversations' composition root."""

from contracts.events import ConversationReopened, MessagePosted, UserRegistered
from services.conversations import handlers
from services.conversations.models import Customer
from services.runtime.inbox import Subscription
from services.runtime.service import Service
from services.runtime.settings import Settings


def build(settings: Settings | None = None, **overrides: object) -> Service:
    return Service(
        "conversations", settings or Settings(),
        produces=(MessagePosted, ConversationReopened),
        subscriptions=(Subscription("auth", {UserRegistered: handlers.record_customer}),),
        read_models=(Customer,),
        **overrides,  # type: ignore[arg-type]
    )
