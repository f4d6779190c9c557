"""Live updates for the portal: each gateway follows the conversations service's events and tells a
customer's open pages which of *their* conversations changed (`GET /api/v1/portals/{portal}/events`,
`services.gateway.web.routes_events`).

- One feed per gateway (`LiveFeed`): an ephemeral ordered push consumer on the `CONVERSATIONS` stream
  (`events.conversations.>`), started with the gateway. Every replica reads every event itself, so
  any number of gateways works and a browser may reconnect to any of them. After a lost connection
  nats-py's ordered consumer recreates itself from the next stream sequence: nothing is skipped.
- An event becomes a `Notice` only when a customer may see that something changed: a public message
  (never an internal note), a conversation created, closed or reopened, a message redacted, a new
  reporter. A notice names the conversation, a kind and the conversation's version, never a text, a
  subject or a name, and it goes to the customer the event names (the reporter): the page then reads
  the conversation through the normal authorised operation. Someone else who sees the conversation (an
  earlier identity of the reporter, a participant) sees the change when their page is next loaded.
- Fan-out stays in the process: one listener per open stream, found by (organisation, customer); each
  has a bounded queue. A listener `QUEUE_SIZE` notices behind is ended; its browser reconnects with
  `Last-Event-ID` and resumes.
- Resume: the feed keeps the newest `RING_SIZE` notices (of every customer) with their stream
  sequences, and when it starts it reads back the stream's last `RING_SIZE` events, so a gateway that
  just started resumes a browser another gateway served. A `Last-Event-ID` within that window replays
  what concerns the viewer after it, each notice once; an older one gets a single `resync` notice (the
  page reads itself afresh) and the stream goes on live.
- Anonymous and e-mail-unverified viewers see only what their own browser created, while the events
  name the account every such browser shares (the portal's Anonymous user, or the unverified address).
  Their listener holds the set of conversations that browser sees (`list_conversations`, read when the
  stream opens, at most `routes_events.BROWSER_PAGES` pages of 100) and passes on notices about those
  only. A notice about another conversation of that account is held back (at most `HELD`) until the
  set is read again at the stream's next session check, so one the browser started in another tab
  shows up within that time and no other browser ever hears of it.
"""

import asyncio
import json
from collections import deque
from dataclasses import dataclass
from typing import Protocol

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy

from contracts.states import Visibility
from contracts.subjects import STREAMS, stream_subjects
from services.runtime.logging import get_logger

log = get_logger("portico.gateway.live")

STREAM = STREAMS["conversations"]
RING_SIZE = 1000  # notices kept for resuming, and events read back when a gateway starts
QUEUE_SIZE = 100  # notices a listener may fall behind before its stream is ended
HELD = 20  # notices an anonymous browser's listener holds back until it reads its conversations again
# Two missed heartbeats and the ordered consumer is made anew (after a NATS restart, from the next event).
HEARTBEAT_SECONDS = 2.0

# Event type -> the kind of change the browser is told; other events say nothing to customers.
KINDS = {"MessagePosted": "message", "ConversationCreated": "created", "ConversationClosed": "status",
         "ConversationReopened": "status", "MessageRedacted": "redacted", "ReporterChanged": "reporter"}


@dataclass(frozen=True)
class Notice:
    """That a customer's conversation changed, at stream sequence `seq`."""

    seq: int
    org_id: str
    customer_id: str
    conversation_id: str
    kind: str
    version: int

    def public(self) -> dict[str, object]:
        """All the browser is told: which conversation, what kind of change, the conversation's version."""
        return {"conversation_id": self.conversation_id, "kind": self.kind, "version": self.version}


def notice_of(seq: int, payload: bytes) -> Notice | None:
    """The notice an event envelope (JSON, as the outbox publishes it) gives, or None: not an event a
    customer sees (an internal note, another event type), or one that does not name its customer."""
    try:
        envelope = json.loads(payload)
        kind = KINDS.get(envelope["type"])
        data = envelope["data"]
        if kind is None or (kind == "message" and data.get("visibility") != Visibility.public):
            return None
        customer = data.get("to_customer_id" if envelope["type"] == "ReporterChanged" else "customer_id")
        org, conversation, version = envelope["org_id"], data["conversation_id"], envelope["aggregate_version"]
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    if not (isinstance(customer, str) and isinstance(org, str) and isinstance(conversation, str)
            and isinstance(version, int)):
        return None
    return Notice(seq, org, customer, conversation, kind, version)


class Listener:
    """One open stream: the notices for its customer after stream sequence `after`, in a bounded
    queue; `None` in the queue ends the stream. `conversations` is set for a viewer who sees only
    what their own browser created."""

    def __init__(self, key: tuple[str, str], after: int, conversations: set[str] | None) -> None:
        self.key = key
        self.after = after
        self.conversations = conversations
        self.queue: asyncio.Queue[Notice | None] = asyncio.Queue(QUEUE_SIZE + 1)  # + the end marker
        self.held: list[Notice] = []
        self.ended = False

    def offer(self, notice: Notice) -> None:
        if self.ended or notice.seq <= self.after:
            return
        if self.conversations is not None and notice.conversation_id not in self.conversations:
            self.held = [*self.held[-(HELD - 1):], notice]
            return
        if self.queue.qsize() >= QUEUE_SIZE:
            self.end()  # too slow: the browser resumes from what it has, with Last-Event-ID
            return
        self.queue.put_nowait(notice)

    def see(self, conversations: set[str]) -> None:
        """The browser's conversations, read again: pass on the held notices that are now its own."""
        self.conversations = conversations
        held, self.held = self.held, []
        for notice in held:
            self.offer(notice)

    def end(self) -> None:
        if self.ended:
            return
        self.ended = True
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(None)


class Follower(Protocol):
    """Another audience of the feed's events."""

    def receive(self, seq: int, payload: bytes) -> None: ...

    def stop(self) -> None: ...


class LiveFeed:
    """The gateway's one subscription to the conversations' events, and its listeners."""

    def __init__(self, ring_size: int = RING_SIZE) -> None:
        self._ring: deque[Notice] = deque(maxlen=ring_size)
        self.covered_from = 1  # the ring holds every notice from this stream sequence on
        self.position = 0  # the newest stream sequence read (at start: the stream's last)
        self._received = 0  # the newest stream sequence the subscription delivered
        self._listeners: dict[tuple[str, str], set[Listener]] = {}
        self.ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._subscription: JetStreamContext.PushSubscription | None = None
        # Other audiences of the same events (the staff's, `services.gateway.live_staff`): each gets every
        # event this feed reads, as `receive(seq, payload)`, and `stop()` with it.
        self.followers: list[Follower] = []

    async def start(self, js: JetStreamContext) -> None:
        """Follow the stream in the background; retried until the stream exists."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(js))

    async def stop(self) -> None:
        """Stop following and end every open stream."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            try:
                await subscription.unsubscribe()
            except Exception as exc:  # already disconnected
                log.warning("live feed unsubscribe failed", error=repr(exc))
        for listeners in list(self._listeners.values()):
            for listener in list(listeners):
                listener.end()
        for follower in self.followers:
            follower.stop()

    async def _run(self, js: JetStreamContext) -> None:
        delay = 0.2
        while True:
            try:
                await self._follow(js)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # stream not created yet, NATS reconnecting: try again
                log.warning("live feed cannot follow the conversations stream yet", error=repr(exc), retry_in=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _follow(self, js: JetStreamContext) -> None:
        state = (await js.stream_info(STREAM)).state
        start = max(state.first_seq, state.last_seq - (self._ring.maxlen or RING_SIZE) + 1, 1)
        # The events up to the stream's last one are read back into the ring, for resuming; a stream
        # opened without Last-Event-ID starts after them.
        self.position, self.covered_from = max(self.position, state.last_seq), start
        self._subscription = await js.subscribe(
            stream_subjects("conversations"), stream=STREAM, cb=self._on_message, ordered_consumer=True,
            idle_heartbeat=HEARTBEAT_SECONDS, deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            config=ConsumerConfig(opt_start_seq=start))
        self.ready.set()
        log.info("live feed following the conversations stream", from_seq=start)

    async def _on_message(self, msg: Msg) -> None:
        self.receive(msg.metadata.sequence.stream, msg.data)

    def receive(self, seq: int, payload: bytes) -> None:
        """One event of the stream: keep its notice, if any, and hand it to its customer's listeners."""
        if seq <= self._received:
            return  # delivered before: the ordered consumer does not, but a notice is never sent twice
        self._received = seq
        self.position = max(self.position, seq)
        for follower in self.followers:
            follower.receive(seq, payload)
        notice = notice_of(seq, payload)
        if notice is None:
            return
        if len(self._ring) == self._ring.maxlen:
            self.covered_from = self._ring[0].seq + 1
        self._ring.append(notice)
        for listener in list(self._listeners.get((notice.org_id, notice.customer_id), ())):
            listener.offer(notice)

    def join(self, org_id: str, customer_id: str, last_event_id: int | None,
             conversations: set[str] | None = None) -> tuple[Listener, bool]:
        """A listener for the customer's notices after `last_event_id` (or from now on), with those the
        ring still holds already queued; `True` with it when the ring no longer reaches back that far
        (the browser should read its page afresh). Call once the feed is `ready`."""
        key = (org_id, customer_id)
        after, backlog, resync = self.position, [], False
        if last_event_id is not None:
            # Within reach: not before the ring, nor far ahead of this gateway (a stream made anew, not a lag).
            if self.covered_from - 1 <= last_event_id <= self.position + (self._ring.maxlen or RING_SIZE):
                backlog = [n for n in self._ring if n.seq > last_event_id and (n.org_id, n.customer_id) == key]
                resync = len(backlog) >= QUEUE_SIZE
                after = self.position if resync else last_event_id
            else:
                resync = True
        listener = Listener(key, after, conversations)
        self._listeners.setdefault(key, set()).add(listener)
        if not resync:
            for notice in backlog:
                listener.offer(notice)
        return listener, resync

    def leave(self, listener: Listener) -> None:
        listeners = self._listeners.get(listener.key)
        if listeners is not None:
            listeners.discard(listener)
            if not listeners:
                del self._listeners[listener.key]

    def listening(self) -> int:
        """Open streams on this gateway."""
        return sum(len(listeners) for listeners in self._listeners.values())
