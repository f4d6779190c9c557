"""conversations' use cases on an in-memory database, without NATS: the handlers the RPC operations
and event consumers call, with their real rules, in a few milliseconds each. (The same paths run
over real NATS and real databases in tests/integration.)"""

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine
from sqlalchemy.pool import StaticPool
from sqlmodel import Session, SQLModel, select

from contracts.conversations import (
    AgentAction,
    AgentGetConversation,
    AgentPostMessage,
    GetConversation,
    ListConversations,
    PostMessage,
    StartConversation,
    Viewer,
)
from contracts.envelope import EventEnvelope, new_id
from contracts.errors import ErrorCode, ServiceError
from contracts.events import EmailReceived
from contracts.rpc import Actor
from services.conversations import agent, consumers, customer, models, queries
from services.runtime.outbox import OutboxRecord
from services.runtime.settings import Settings

ORG = "0" * 26
SETTINGS = Settings(env="dev")
AGENT = Actor(org_id=ORG, role="agent", principal="user:" + "A" * 26)
TABLES = [m.__table__ for m in (models.Customer, models.PortalConfig, models.Conversation, models.ConversationViewer,
                                models.Message, models.Attachment, models.IdempotencyRecord, models.InboundReceipt,
                                models.StaffRead, OutboxRecord)]


@pytest.fixture
def session() -> Iterator[Session]:
    engine = create_engine("sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False})
    SQLModel.metadata.create_all(engine, tables=TABLES)
    with Session(engine, expire_on_commit=False) as session:
        yield session
    engine.dispose()


def customer_viewer(user: str = "C" * 26, *, anonymous: bool = False, browser: str = "b1") -> Viewer:
    return Viewer(user_id=user, org_id=ORG, portal="demo", kind="anonymous" if anonymous else "customer",
                  method="anonymous" if anonymous else "sso", session_key=hashlib.sha256(browser.encode()).hexdigest(),
                  email=None if anonymous else "ana@example.com")


def start(session: Session, viewer: Viewer, body: str = "The invoice is wrong.") -> str:
    return customer.start_conversation(SETTINGS, session, StartConversation(
        viewer=viewer, subject="Invoice", body=body)).conversation.id


def set_policy(session: Session, **values: object) -> None:
    session.add(models.PortalConfig(portal="demo", org_id=ORG, updated_at=datetime.now(UTC), **values))  # type: ignore[arg-type]
    session.flush()


def test_a_customer_never_sees_an_internal_note_and_the_agent_does(session):
    ana = customer_viewer()
    cid = start(session, ana)
    agent.post_message(SETTINGS, session, AgentPostMessage(actor=AGENT, conversation_id=cid, body="VIP", internal=True))
    agent.post_message(SETTINGS, session, AgentPostMessage(actor=AGENT, conversation_id=cid, body="Fixed."))
    seen = queries.get_conversation(session, GetConversation(viewer=ana, conversation_id=cid)).conversation
    assert [m.body for m in seen.messages if m.kind == "message"] == ["The invoice is wrong.", "Fixed."]
    timeline = queries.agent_conversation(session, AgentGetConversation(actor=AGENT, conversation_id=cid)).messages
    assert [m.body for m in timeline if m.kind in ("message", "note")] == ["The invoice is wrong.", "VIP", "Fixed."]


def test_an_anonymous_browser_sees_only_what_it_started(session):
    mine, other = customer_viewer("N" * 26, anonymous=True, browser="b1"), customer_viewer("N" * 26, anonymous=True,
                                                                                               browser="b2")
    cid = start(session, mine)
    assert [c.id for c in queries.list_conversations(session, ListConversations(viewer=mine)).conversations] == [cid]
    assert queries.list_conversations(session, ListConversations(viewer=other)).conversations == []
    with pytest.raises(ServiceError) as hidden:
        queries.get_conversation(session, GetConversation(viewer=other, conversation_id=cid))
    assert hidden.value.code == ErrorCode.not_found


def test_the_portal_refuses_a_message_to_a_closed_conversation_unless_it_asks_to_reopen(session):
    ana = customer_viewer()
    cid = start(session, ana)
    agent.close(session, AgentAction(actor=AGENT, conversation_id=cid))
    with pytest.raises(ServiceError) as closed:
        customer.post_message(SETTINGS, session, PostMessage(viewer=ana, conversation_id=cid, body="Again."))
    assert closed.value.code == ErrorCode.conversation_closed
    posted = customer.post_message(SETTINGS, session, PostMessage(viewer=ana, conversation_id=cid, body="Again.",
                                                                  reopen=True))
    assert posted.reopened and posted.conversation_id == cid


def test_a_message_over_the_portals_limit_is_refused_and_stores_nothing(session):
    set_policy(session, max_body_chars=10)
    with pytest.raises(ServiceError) as refused:
        start(session, customer_viewer(), body="x" * 11)
    assert refused.value.code == ErrorCode.message_too_long
    assert session.exec(select(models.Conversation)).all() == []


def email(conversation_id: str, customer_id: str, body: str) -> tuple[EmailReceived, EventEnvelope]:
    event = EmailReceived(email_message_id=f"<{new_id()}@mail.example.com>", portal="demo",
                          conversation_id=conversation_id, customer_id=customer_id, from_email="ana@example.com",
                          conversation_subject="Invoice", body=body, matched_by="reply_token")
    envelope = EventEnvelope(id=new_id(), type="EmailReceived", version=1, occurred_at=datetime.now(UTC), org_id=ORG,
                             aggregate_id=new_id(), aggregate_version=1, correlation_id=new_id(), causation_id=None,
                             data=event.model_dump(mode="json"))
    return event, envelope


@pytest.mark.parametrize("policy,reopens", [({}, True), ({"reopen_policy": "new_conversation"}, False),
                                            ({"reopen_enabled": False}, False)])
def test_an_email_reply_to_a_closed_conversation_follows_the_portals_policy(session, policy, reopens):
    if policy:
        set_policy(session, **policy)
    ana = customer_viewer()
    cid = start(session, ana)
    agent.close(session, AgentAction(actor=AGENT, conversation_id=cid))
    consumers.email_received(session, *email(cid, ana.user_id, "It broke again."))
    session.flush()
    closed = session.get(models.Conversation, cid)
    assert closed is not None and (closed.status == "open") is reopens
    listed = queries.list_conversations(session, ListConversations(viewer=ana)).conversations
    assert len(listed) == (1 if reopens else 2)
    if not reopens:
        follow_up = next(c for c in listed if c.id != cid)
        row = session.get(models.Conversation, follow_up.id)
        assert row is not None and row.linked_from == cid and row.channel == "email"
