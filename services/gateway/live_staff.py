"""Live updates for the agent workspace: which of the organisation's conversations changed, for the staff's
open inbox and conversation pages (`GET /api/v1/agent/events`, `services.gateway.web.console.routes_events`).

The staff's audience of the gateway's one feed (`services.gateway.live.LiveFeed`, which hands it every
event it reads): no second subscription. A notice names the conversation, a kind and the conversation's
version, never a text; it goes to every staff stream of the event's organisation (the envelope's
`org_id`), internal notes included (kind `note`: staff read those), and the page reads the conversation
through the agent operations, which check the role again. Resuming works as for customers: the newest
`RING_SIZE` staff notices are kept with their stream sequences; an older `Last-Event-ID` gets a `resync`.
"""

import json
from collections import deque

from contracts.states import Visibility
from services.gateway.live import KINDS, QUEUE_SIZE, RING_SIZE, Listener, LiveFeed, Notice

STAFF = "*staff"  # the listeners' key beside the org: no customer id looks like it


def staff_notice_of(seq: int, payload: bytes) -> Notice | None:
    """The staff notice an event envelope gives, or None (another event type, or not one of a conversation)."""
    try:
        envelope = json.loads(payload)
        kind = KINDS.get(envelope["type"])
        data = envelope["data"]
        if kind == "message" and data.get("visibility") != Visibility.public:
            kind = "note"
        org, conversation, version = envelope["org_id"], data["conversation_id"], envelope["aggregate_version"]
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    if kind is None or not (isinstance(org, str) and isinstance(conversation, str) and isinstance(version, int)):
        return None
    return Notice(seq, org, STAFF, conversation, kind, version)


class StaffFeed:
    """The staff's listeners, by organisation, fed by the gateway's `LiveFeed`."""

    def __init__(self, feed: LiveFeed, ring_size: int = RING_SIZE) -> None:
        self.feed = feed
        self._ring: deque[Notice] = deque(maxlen=ring_size)
        self._dropped_until = 0  # the newest stream sequence whose notice fell out of the ring
        self._listeners: dict[str, set[Listener]] = {}
        feed.followers.append(self)

    @property
    def covered_from(self) -> int:
        """The ring holds every staff notice from this stream sequence on (the feed reads back from its own
        `covered_from` when it starts)."""
        return max(self.feed.covered_from, self._dropped_until + 1)

    def receive(self, seq: int, payload: bytes) -> None:
        notice = staff_notice_of(seq, payload)
        if notice is None:
            return
        if len(self._ring) == self._ring.maxlen:
            self._dropped_until = self._ring[0].seq
        self._ring.append(notice)
        for listener in list(self._listeners.get(notice.org_id, ())):
            listener.offer(notice)

    def join(self, org_id: str, last_event_id: int | None) -> tuple[Listener, bool]:
        """A listener for the org's notices after `last_event_id` (or from now on), with those the ring still
        holds already queued; `True` with it when the ring no longer reaches back that far. Call once the
        feed is `ready`."""
        position = self.feed.position
        after, backlog, resync = position, [], False
        if last_event_id is not None:
            if self.covered_from - 1 <= last_event_id <= position + (self._ring.maxlen or RING_SIZE):
                backlog = [n for n in self._ring if n.seq > last_event_id and n.org_id == org_id]
                resync = len(backlog) >= QUEUE_SIZE
                after = position if resync else last_event_id
            else:
                resync = True
        listener = Listener((org_id, STAFF), after, None)
        self._listeners.setdefault(org_id, set()).add(listener)
        if not resync:
            for notice in backlog:
                listener.offer(notice)
        return listener, resync

    def leave(self, listener: Listener) -> None:
        org_id = listener.key[0]
        listeners = self._listeners.get(org_id)
        if listeners is not None:
            listeners.discard(listener)
            if not listeners:
                del self._listeners[org_id]

    def stop(self) -> None:
        """The gateway stops: end every open staff stream (browsers reconnect to another gateway)."""
        for listeners in list(self._listeners.values()):
            for listener in list(listeners):
                listener.end()

    def listening(self) -> int:
        return sum(len(listeners) for listeners in self._listeners.values())
