"""The live feed's rules without NATS: which events become notices, for whom, and how a stream resumes
(services/gateway/live.py). The same feed runs against a real stream in tests/integration/test_portal_events.py."""

import json

from services.gateway import live
from services.gateway.live import LiveFeed, notice_of


def envelope(type_: str, customer: str | None = "ana", conversation: str = "c1", version: int = 2,
             **data: object) -> bytes:
    payload = {"conversation_id": conversation, "body": "secret words", "conversation_subject": "secret subject",
               **({"customer_id": customer} if customer else {}), **data}
    return json.dumps({"type": type_, "org_id": "org", "aggregate_version": version, "data": payload}).encode()


def drained(listener: live.Listener) -> list[int | None]:
    seqs = []
    while not listener.queue.empty():
        notice = listener.queue.get_nowait()
        seqs.append(notice.seq if notice else None)
    return seqs


def test_a_notice_says_which_conversation_changed_and_nothing_else() -> None:
    notice = notice_of(7, envelope("MessagePosted", visibility="public"))
    assert notice is not None and (notice.seq, notice.customer_id, notice.kind) == (7, "ana", "message")
    assert notice.public() == {"conversation_id": "c1", "kind": "message", "version": 2}


def test_what_a_customer_may_not_see_or_cannot_be_placed_is_no_notice() -> None:
    assert notice_of(1, envelope("MessagePosted", visibility="internal")) is None
    assert notice_of(1, envelope("MessagePosted")) is None  # no visibility: not known to be public
    assert notice_of(1, envelope("MessageRedacted", customer=None)) is None  # published before it named one
    assert notice_of(1, envelope("UserRegistered")) is None
    assert notice_of(1, b"not json") is None
    assert notice_of(1, json.dumps({"type": "ConversationClosed"}).encode()) is None
    changed = notice_of(1, envelope("ReporterChanged", customer=None, from_customer_id="anon", to_customer_id="ana"))
    assert changed is not None and (changed.customer_id, changed.kind) == ("ana", "reporter")


def test_a_resume_replays_what_concerns_the_viewer_once_and_a_too_old_one_resyncs() -> None:
    feed = LiveFeed(ring_size=4)
    for seq, customer in ((1, "ana"), (2, "bob"), (3, "ana")):
        feed.receive(seq, envelope("ConversationClosed", customer=customer))
    listener, resync = feed.join("org", "ana", 1)
    assert not resync and drained(listener) == [3]
    feed.receive(4, envelope("ConversationReopened", customer="ana"))
    feed.receive(4, envelope("ConversationReopened", customer="ana"))  # never twice
    assert drained(listener) == [4]
    for seq in (5, 6, 7):
        feed.receive(seq, envelope("ConversationClosed", customer="bob"))
    assert feed.covered_from == 4  # notices 1 to 3 fell out of the ring
    late, resync = feed.join("org", "ana", 2)
    assert resync and drained(late) == [] and late.after == 7
    fresh, resync = feed.join("org", "ana", None)
    assert not resync and fresh.after == 7


def test_a_listener_too_far_behind_is_ended() -> None:
    feed = LiveFeed()
    listener, _ = feed.join("org", "ana", None)
    for seq in range(1, live.QUEUE_SIZE + 2):
        feed.receive(seq, envelope("ConversationClosed"))
    assert listener.ended and drained(listener) == [None]


def test_a_browser_that_sees_only_its_own_conversations_hears_of_those_only() -> None:
    feed = LiveFeed()
    first, _ = feed.join("org", "anonymous", None, conversations={"mine"})
    other, _ = feed.join("org", "anonymous", None, conversations={"theirs"})
    feed.receive(1, envelope("MessagePosted", customer="anonymous", conversation="mine", visibility="public"))
    feed.receive(2, envelope("ConversationCreated", customer="anonymous", conversation="new"))
    assert drained(first) == [1] and drained(other) == []
    first.see({"mine", "new"})  # started in another tab of the same browser
    other.see({"theirs"})
    assert drained(first) == [2] and drained(other) == []
    feed.leave(first)
    feed.leave(other)
    assert feed.listening() == 0
