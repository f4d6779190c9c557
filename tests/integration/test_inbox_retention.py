"""The inbox does not grow for ever: rows older than PORTICO_INBOX_RETENTION_HOURS are pruned, by the
running consumer too, and a gap-filling replay never applies again an event whose row was pruned."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import update
from sqlmodel import Session

from contracts.events import UserRegistered
from services.conversations.app import build as build_conversations
from services.runtime import inbox
from services.runtime.inbox import InboxRecord, Subscription
from services.runtime.service import Service
from tests.helpers import count, wait_until
from tests.kit.events import publish, user_registered


def age_inbox_rows(service: Service, event_ids: list[str], hours: float) -> None:
    """Pretend these events were applied `hours` ago."""
    with Session(service.engine) as session:
        session.exec(update(InboxRecord).where(InboxRecord.event_id.in_(event_ids))  # type: ignore[call-overload,attr-defined]
                     .values(processed_at=datetime.now(UTC) - timedelta(hours=hours)))
        session.commit()


async def test_inbox_rows_older_than_the_retention_are_pruned_and_newer_ones_kept(settings, start_service):
    settings = settings.model_copy(update={"inbox_retention_hours": 24.0})
    conversations = await start_service(build_conversations, settings)
    consumer = next(c for c in conversations.consumers if c.subscription.source == "auth")
    assert consumer.retention == timedelta(hours=24)
    old, recent = user_registered("old@example.com"), user_registered("recent@example.com")
    await publish(settings.nats_url, [old, recent])
    url = settings.database_url("conversations")
    await wait_until(lambda: count(url, "inbox", "consumer = :c", c=consumer.name) == 2)

    age_inbox_rows(conversations, [old.id], hours=25)
    assert consumer.prune() == 1
    assert count(url, "inbox", "event_id = :e", e=recent.id) == 1
    assert count(url, "inbox", "event_id = :e", e=old.id) == 0
    assert count(url, "customers") == 2  # the effects stay; only the bookkeeping goes
    assert consumer.prune() == 0


async def test_a_running_consumer_prunes_its_inbox_by_itself(settings, start_service, monkeypatch):
    monkeypatch.setattr(inbox, "INBOX_PRUNE_EVERY", 0.2)
    settings = settings.model_copy(update={"inbox_retention_hours": 24.0, "consumer_ack_wait": 0.1})
    conversations = await start_service(build_conversations, settings)
    event = user_registered("pruned@example.com")
    await publish(settings.nats_url, [event])
    url = settings.database_url("conversations")
    await wait_until(lambda: count(url, "inbox", "event_id = :e", e=event.id) == 1)
    age_inbox_rows(conversations, [event.id], hours=25)
    await wait_until(lambda: count(url, "inbox", "event_id = :e", e=event.id) == 0, timeout=20)


async def test_a_gap_filling_replay_never_applies_a_pruned_event_again(settings, start_service):
    settings = settings.model_copy(update={"inbox_retention_hours": 1 / 3600})  # one second
    applied: list[str] = []

    def record(session, event: UserRegistered, envelope) -> None:  # type: ignore[no-untyped-def]
        applied.append(envelope.id)

    def build(settings, **overrides):  # type: ignore[no-untyped-def]
        return Service("notifications", settings, subscriptions=(Subscription("auth", {UserRegistered: record}),),
                       **overrides)

    service = await start_service(build, settings)
    event = user_registered("once@example.com")
    await publish(settings.nats_url, [event])
    await wait_until(lambda: applied == [event.id])
    consumer = service.consumers[0]
    await wait_until(lambda: consumer.prune() == 1, interval=0.2)  # once its row is a second old

    assert await service.replay() == 0  # the event is older than the retention: not read again
    assert applied == [event.id]
    assert await service.replay(rebuild=True) == 1  # a rebuild empties the inbox and reads everything
