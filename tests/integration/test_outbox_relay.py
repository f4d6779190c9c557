"""The outbox relay against a real nats-server and real databases: committed rows are handed to it in memory
and published without a query, in commit order, also with another writer (a replica) on the same database;
rows of rolled-back transactions and savepoints never reach the stream; acknowledged rows are marked
published in batches and a stop before marking only re-sends, de-duplicated."""

import asyncio
import json

import nats
import pytest

from contracts.events import UserRegistered
from contracts.subjects import STREAMS
from services.runtime.outbox import OutboxRelay, record_event
from services.runtime.service import Service
from tests.helpers import count, rows, wait_until


def event(user_id: str) -> UserRegistered:
    return UserRegistered(user_id=user_id, email=f"{user_id.lower()}@example.com", kind="customer",
                          method="email", portal="demo")


def record(session, aggregate: str, version: int) -> str:  # type: ignore[no-untyped-def]
    return record_event(session, event(f"{aggregate}-{version}"), org_id="org_test", aggregate_id=aggregate,
                        aggregate_version=version).id


async def stream_envelopes(nats_url: str) -> list[dict]:
    """Every event in auth's stream, in stream order, with its Nats-Msg-Id checked against the envelope id."""
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        state = (await js.stream_info(STREAMS["auth"])).state
        found = []
        for seq in range(state.first_seq, state.last_seq + 1) if state.messages else ():
            message = await js.get_msg(STREAMS["auth"], seq)
            envelope = json.loads(message.data or b"{}")
            assert (message.headers or {}).get("Nats-Msg-Id") == envelope["id"]
            found.append(envelope)
        return found
    finally:
        await nc.close()


async def start_auth(settings, start_service, **overrides) -> Service:  # type: ignore[no-untyped-def]
    return await start_service(lambda s, **o: Service("auth", s, database_url=s.database_url("auth"), **o),
                               settings, **overrides)


async def test_committed_events_are_handed_over_without_a_query_and_marked_in_batches(
        settings, start_service, monkeypatch, databases):
    settings = settings.model_copy(update={"relay_poll_interval": 60.0})
    auth = await start_auth(settings, start_service)
    auth_db = settings.database_url("auth")
    await auth.transaction(record, "warm", 1)
    await wait_until(lambda: auth.relay.published_total == 1)  # the start's read has run
    reads = {"n": 0}
    marks: list[int] = []
    load, mark = auth.relay._load_pending, auth.relay._mark_published
    monkeypatch.setattr(auth.relay, "_load_pending", lambda: (reads.__setitem__("n", reads["n"] + 1), load())[1])
    monkeypatch.setattr(auth.relay, "_mark_published", lambda seqs: (marks.append(len(seqs)), mark(seqs))[1])

    ids = [await auth.transaction(record, "agg", version) for version in range(1, 41)]

    await wait_until(lambda: count(auth_db, "outbox", "published_at IS NULL") == 0)
    assert [e["id"] for e in await stream_envelopes(settings.nats_url)][1:] == ids
    if databases.backend == "sqlite":  # rows numbered in commit order: nothing to read
        assert reads["n"] == 0
    assert sum(marks) == 40 and len(marks) < 40  # one UPDATE for many rows


async def test_rolled_back_transactions_and_savepoints_publish_nothing(settings, start_service):
    auth = await start_auth(settings, start_service)

    def with_savepoints(session) -> list[str]:  # type: ignore[no-untyped-def]
        kept = [record(session, "sp", 1)]
        try:
            with session.begin_nested():
                record(session, "sp", 2)
                with session.begin_nested():
                    record(session, "sp", 3)
                raise RuntimeError("the savepoint rolls back, with the inner one it released")
        except RuntimeError:
            pass
        return kept

    def released(session) -> str:  # type: ignore[no-untyped-def]
        with session.begin_nested():
            return record(session, "sp", 4)

    def fails(session) -> None:  # type: ignore[no-untyped-def]
        record(session, "gone", 1)
        raise ValueError("the whole transaction rolls back")

    warm = await auth.transaction(record, "warm", 1)
    await wait_until(lambda: auth.relay.published_total == 1)  # from now on rows follow in memory
    kept = [warm, *await auth.transaction(with_savepoints)]
    with pytest.raises(ValueError):
        await auth.transaction(fails)
    kept.append(await auth.transaction(released))
    last = await auth.transaction(record, "sp", 5)

    auth_db = settings.database_url("auth")
    await wait_until(lambda: count(auth_db, "outbox", "published_at IS NULL") == 0)
    await asyncio.sleep(0.3)
    assert [e["id"] for e in await stream_envelopes(settings.nats_url)] == [*kept, last]
    assert [r[0] for r in rows(auth_db, "SELECT event_id FROM outbox ORDER BY seq")] == [*kept, last]


async def test_two_replicas_writing_one_database_keep_each_aggregates_order(settings, start_service, databases):
    replicas = [await start_auth(settings, start_service) for _ in range(2)]
    aggregates, versions = 4, 15

    async def write(aggregate: str) -> None:
        for version in range(1, versions + 1):  # one after the other, alternating replicas
            await replicas[version % 2].transaction(record, aggregate, version)

    await asyncio.gather(*(write(f"agg{a}") for a in range(aggregates)))
    auth_db = settings.database_url("auth")
    await wait_until(lambda: count(auth_db, "outbox", "published_at IS NULL") == 0, timeout=30)
    published = await stream_envelopes(settings.nats_url)
    assert len(published) == aggregates * versions  # each once: re-sends were de-duplicated
    for a in range(aggregates):
        assert [e["aggregate_version"] for e in published if e["aggregate_id"] == f"agg{a}"] == \
            list(range(1, versions + 1))
    if databases.backend == "sqlite":  # committed alone, numbered in commit order: the stream follows it
        assert [e["id"] for e in published] == [r[0] for r in rows(auth_db, "SELECT event_id FROM outbox ORDER BY seq")]


async def test_a_stop_before_the_mark_resends_once_in_effect(settings, start_service):
    auth_db = settings.database_url("auth")
    first = await start_auth(settings, start_service, relay_enabled=False)
    ids = [await first.transaction(record, "stop", version) for version in range(1, 6)]
    relay = OutboxRelay(first.engine, lambda: first.broker.connection)

    async def no_mark(*, force: bool = False) -> None:
        raise asyncio.CancelledError  # the process stops between the acks and the mark

    relay._mark = no_mark  # type: ignore[method-assign,assignment]
    with pytest.raises(asyncio.CancelledError):
        await relay.publish_pending()
    assert count(auth_db, "outbox", "published_at IS NULL") == 5
    assert [e["id"] for e in await stream_envelopes(settings.nats_url)] == ids

    await start_auth(settings, start_service)  # the restarted process reads and re-sends them
    await wait_until(lambda: count(auth_db, "outbox", "published_at IS NULL") == 0)
    assert [e["id"] for e in await stream_envelopes(settings.nats_url)] == ids  # stored once


async def test_a_busy_relay_gathers_commits_into_passes_and_an_idle_one_publishes_at_once(
        settings, start_service, monkeypatch, databases):
    """PORTICO_RELAY_LINGER: while commits keep coming a pass starts at most every `linger` seconds and takes
    every row committed meanwhile (in order, each once); a commit that finds the relay idle goes at once."""
    settings = settings.model_copy(update={"relay_poll_interval": 0.3, "relay_linger": 2.0})
    auth = await start_auth(settings, start_service)
    auth_db = settings.database_url("auth")
    passes: list[int] = []
    publish = auth.relay._publish

    async def counted(rows):  # type: ignore[no-untyped-def]
        passes.append(len(rows))
        await publish(rows)
    monkeypatch.setattr(auth.relay, "_publish", counted)

    await asyncio.sleep(2.2)  # polls that published nothing since the start: idle, whatever they read
    first = await auth.transaction(record, "agg", 1)
    await wait_until(lambda: auth.relay.published_total + len(auth.relay._acked) >= 1, timeout=1.5)  # not 2 s
    ids = [first] + [await auth.transaction(record, "agg", version) for version in range(2, 21)]

    await wait_until(lambda: count(auth_db, "outbox", "published_at IS NULL") == 0, timeout=30)
    assert [e["id"] for e in await stream_envelopes(settings.nats_url)] == ids
    assert passes[0] == 1 and sum(passes) == 20 and len(passes) == 2, passes  # the 19 others waited together
