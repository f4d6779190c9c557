"""The staff's live feed without NATS (services/gateway/live_staff.py): every change of a conversation of the
organisation, internal notes included, and nothing of another organisation; resuming as the customers' feed."""

import json

from services.gateway import live
from services.gateway.live import LiveFeed
from services.gateway.live_staff import StaffFeed, staff_notice_of


def envelope(type_: str, org: str = "org", conversation: str = "c1", version: int = 2, **data: object) -> bytes:
    payload = {"conversation_id": conversation, "body": "secret words", "customer_id": "ana", **data}
    return json.dumps({"type": type_, "org_id": org, "aggregate_version": version, "data": payload}).encode()


def drained(listener: live.Listener) -> list[tuple[int, str] | None]:
    out = []
    while not listener.queue.empty():
        notice = listener.queue.get_nowait()
        out.append((notice.seq, notice.kind) if notice else None)
    return out


def test_staff_hear_of_notes_and_every_change_and_nothing_more() -> None:
    note = staff_notice_of(3, envelope("MessagePosted", visibility="internal"))
    assert note is not None and note.kind == "note"
    assert note.public() == {"conversation_id": "c1", "kind": "note", "version": 2}
    answer = staff_notice_of(4, envelope("MessagePosted", visibility="public"))
    assert answer is not None and answer.kind == "message"
    redacted = staff_notice_of(5, envelope("MessageRedacted", customer_id=None))  # no customer needed
    assert redacted is not None and redacted.kind == "redacted"
    assert staff_notice_of(6, envelope("UserRegistered")) is None
    assert staff_notice_of(7, b"not json") is None


def test_an_organisations_staff_hear_only_of_its_conversations() -> None:
    feed = LiveFeed()
    staff = StaffFeed(feed)
    ours, _ = staff.join("org", None)
    theirs, _ = staff.join("other", None)
    feed.receive(1, envelope("ConversationCreated"))
    feed.receive(2, envelope("MessagePosted", org="other", conversation="c9", visibility="internal"))
    feed.receive(3, envelope("ConversationClosed"))
    assert drained(ours) == [(1, "created"), (3, "status")]
    assert drained(theirs) == [(2, "note")]
    staff.leave(ours)
    staff.leave(theirs)
    assert staff.listening() == 0


def test_a_resume_replays_what_was_missed_once_and_a_too_old_one_resyncs() -> None:
    feed = LiveFeed()
    staff = StaffFeed(feed, ring_size=3)
    for seq in (1, 2, 3):
        feed.receive(seq, envelope("MessagePosted", visibility="public"))
    resumed, resync = staff.join("org", 1)
    assert not resync and drained(resumed) == [(2, "message"), (3, "message")]
    feed.receive(4, envelope("ConversationClosed"))
    assert drained(resumed) == [(4, "status")]
    assert staff.covered_from == 2  # notice 1 fell out of the ring
    late, resync = staff.join("org", 0)
    assert resync and drained(late) == [] and late.after == 4
    staff.stop()
    assert drained(resumed) == [None] and drained(late) == [None]
