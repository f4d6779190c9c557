"""What the fault tests share: the steady load of customer messages and agent answers, and the checks that
nothing it got accepted was lost or doubled.

`run_load(...)` starts one client per customer (posting to its own conversation) and one agent (answering in
turn in each; one agent per gateway when there are several), each waiting `PAUSE_BETWEEN_REQUESTS` after an
answer. With `retry=True` every post carries an
`Idempotency-Key` and a post that got no 2xx (a 503/504 while a service is down, a connection refused while the
gateway is, a timeout) is sent again with the same key until it is accepted: a timed-out post may or may not
have been stored, and the key makes the retry store it once either way.

`verify(...)` asserts, from the databases, the SMTP sink and NATS: every accepted post stored once and nothing
else stored; one reply notification per public answer, each sent and e-mailed exactly once (counted by the
e-mail's Message-ID; one killed between the SMTP server's acceptance and its bookkeeping is flagged and may
be mailed twice, with the same Message-ID); notifications knows every conversation; every durable consumer caught up (num_pending 0,
num_ack_pending 0). It returns the counts that `report(...)` prints.
"""

import asyncio
import itertools
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import nats

from contracts.subjects import STREAMS
from services.notifications.outbound import UNKNOWN_OUTCOME
from tests.helpers import rows
from tests.kit.conversations import Demo, start
from tests.kit.mail import Sink, eventually

PAUSE_BETWEEN_REQUESTS = 0.1  # seconds each client waits after an answer: a steady load, not a flood
REQUEST_TIMEOUT = 30.0  # seconds a client waits for one answer
RETRY_AFTER_STOP = 60.0  # seconds at most the last unaccepted posts are retried once the load has stopped
CATCH_UP = 90.0  # seconds at most for the pipeline to settle afterwards


def accepted_status(status: int | None) -> bool:
    return status is not None and 200 <= status < 300


@dataclass
class Client:
    """What one client sent and how it went: (body, status or None for no answer, started, ended) per attempt."""

    name: str
    sent: list[tuple[str, int | None, float, float]] = field(default_factory=list)

    def accepted(self) -> list[str]:
        """Bodies accepted (each once, in order, also when a retry was what got it accepted)."""
        return list(dict.fromkeys(body for body, status, _, _ in self.sent if accepted_status(status)))

    def refused(self) -> int:
        """Attempts not accepted (2xx): refused, failed or left without an answer."""
        return sum(1 for _, status, _, _ in self.sent if not accepted_status(status))

    def longest_pause(self) -> float:
        """Longest time between two accepted answers (from the first request's start): what a user waited."""
        ends = [self.sent[0][2]] if self.sent else []
        ends += [ended for _, status, _, ended in self.sent if accepted_status(status)]
        return max((b - a for a, b in zip(ends, ends[1:])), default=0.0)


async def send(client: Client, browser: httpx.AsyncClient, path: str, body: str, key: str | None) -> bool:
    """One attempt; True if accepted."""
    started = time.monotonic()
    headers = {"Idempotency-Key": key} if key else {}
    try:
        response = await browser.post(path, json={"body": body}, headers=headers, timeout=REQUEST_TIMEOUT)
        status: int | None = response.status_code
    except httpx.HTTPError:
        status = None
    client.sent.append((body, status, started, time.monotonic()))
    return accepted_status(status)


async def post_in_a_loop(client: Client, browser: httpx.AsyncClient, paths: list[str], stop: asyncio.Event,
                         body_of: Callable[[int], str], retry: bool = False,
                         gateways: list[str] | None = None) -> None:
    """Post `body_of(n)` to `paths[n % len(paths)]` until `stop`; with `retry`, each under its own
    Idempotency-Key and sent again until accepted (after `stop`, for `RETRY_AFTER_STOP` seconds at most).
    With `gateways` (base URLs), a post not accepted is sent again to the next one, as a load balancer would."""
    give_up = None
    for n in itertools.count():
        if stop.is_set():
            return
        body, path = body_of(n), paths[n % len(paths)]
        key = f"{client.name}-{n}" if retry else None
        while not await send(client, browser, path, body, key) and retry:
            if gateways:
                browser.base_url = httpx.URL(gateways[(gateways.index(str(browser.base_url).rstrip("/")) + 1)
                                                      % len(gateways)])
            if stop.is_set():
                give_up = give_up or time.monotonic() + RETRY_AFTER_STOP
                if time.monotonic() > give_up:
                    return
            await asyncio.sleep(PAUSE_BETWEEN_REQUESTS * 3)
        await asyncio.sleep(PAUSE_BETWEEN_REQUESTS)


@dataclass
class Load:
    """The clients of a running load and their tasks; `stop()` ends it (retries finish first)."""

    clients: list[Client]
    tasks: list[asyncio.Task[None]]
    stop_event: asyncio.Event
    browsers: list[httpx.AsyncClient]
    conversations: list[str]

    async def stop(self) -> None:
        self.stop_event.set()
        await asyncio.gather(*self.tasks)
        for browser in self.browsers:
            await browser.aclose()

    @property
    def started(self) -> float:
        return min(c.sent[0][2] for c in self.clients if c.sent)


async def run_load(demo: Demo, agent: httpx.AsyncClient, customers: int, *, retry: bool = False,
                   base_urls: list[str] | None = None) -> Load:
    """Customers signed in by SSO, each with a conversation, posting; `agent` answering in each in turn.
    With `base_urls`, customer i talks to `base_urls[i % len]` and the agent alternates between them."""
    browsers = []
    for i in range(customers):
        browser = await demo.customer(f"customer{i}@example.com")
        if base_urls:
            browser.base_url = httpx.URL(base_urls[i % len(base_urls)])
        browsers.append(browser)
    conversations = [(await start(browser, subject=f"Order {i}"))["id"] for i, browser in enumerate(browsers)]
    stop = asyncio.Event()
    clients = [Client(f"customer{i}") for i in range(customers)]
    tasks = [asyncio.create_task(post_in_a_loop(
        clients[i], browser, [f"/api/v1/portals/demo/conversations/{conversations[i]}/messages"], stop,
        lambda n, i=i: f"[c{i}-{n:05d}] where is my order?", retry, base_urls))
        for i, browser in enumerate(browsers)]
    agents = [agent]
    for url in (base_urls or [])[1:]:
        other = httpx.AsyncClient(base_url=url, cookies=agent.cookies, timeout=REQUEST_TIMEOUT)
        agents.append(other)
        browsers.append(other)
    for j, one_agent in enumerate(agents):
        clients.append(Client(f"agent{j}"))
        tasks.append(asyncio.create_task(post_in_a_loop(
            clients[-1], one_agent, [f"/api/v1/agent/conversations/{cid}/messages" for cid in conversations], stop,
            lambda n, j=j: f"[a{j}-{n:05d}] it ships tomorrow.", retry, base_urls)))
    return Load(clients, tasks, stop, browsers, conversations)


async def consumers_behind(servers: list[str]) -> dict[str, tuple[int, int]]:
    """{stream/consumer: (num_pending, num_ack_pending)} of every durable consumer of Portico's streams."""
    nc = await nats.connect(servers, connect_timeout=2, max_reconnect_attempts=3)
    try:
        js = nc.jetstream(timeout=5)
        found = {}
        for stream in STREAMS.values():
            for info in await js.consumers_info(stream):
                if info.config.durable_name:
                    found[f"{stream}/{info.name}"] = (info.num_pending, info.num_ack_pending)
        return found
    finally:
        await nc.close()


async def verify(clients: list[Client], conversations_db: str, notifications_db: str, sink: Sink,
                 servers: list[str], *, retried: bool = False) -> dict[str, object]:
    """Assert nothing accepted was lost or doubled (see the module's docstring); the counts. `retried`: the
    load ran with `retry=True`, so every post must have been accepted in the end and nothing else stored."""
    customer_bodies = [b for c in clients if c.name.startswith("customer") for b in c.accepted()]
    answers = [b for c in clients if c.name.startswith("agent") for b in c.accepted()]
    assert customer_bodies and answers

    # Every accepted request is stored, once.
    stored = dict(rows(conversations_db, "SELECT body, count(*) FROM messages WHERE body LIKE '[%' GROUP BY body"))
    assert [b for b in customer_bodies + answers if stored.get(b) != 1] == []
    assert [b for b, n in stored.items() if n != 1] == []
    if retried:  # every post was sent until accepted: nothing stored that the clients do not know of
        assert [c.name for c in clients if c.sent and not accepted_status(c.sent[-1][1])] == []
        assert sorted(stored) == sorted(customer_bodies + answers)

    # Every event handled once in effect: one notification per public answer (accepted or not, if stored),
    # each e-mailed once; and the durable consumers have nothing left.
    public_answers = rows(conversations_db, "SELECT count(*) FROM messages WHERE author_kind = 'agent' "
                                            "AND visibility = 'public' AND kind = 'message'")[0][0]

    def replies_sent() -> bool:
        return rows(notifications_db, "SELECT count(*) FROM notifications WHERE purpose = 'reply' "
                                      "AND status = 'sent'")[0][0] >= public_answers

    try:
        await eventually(replies_sent, timeout=CATCH_UP)
    except AssertionError:
        raise AssertionError(f"{public_answers} public answers, reply notifications by status " + str(rows(
            notifications_db, "SELECT status, count(*) FROM notifications WHERE purpose = 'reply' GROUP BY status"))
            + ", pending ones claimed (claimed_until set) " + str(rows(
                notifications_db, "SELECT count(*) FROM notifications WHERE purpose = 'reply' AND status = 'pending' "
                                  "AND claimed_until IS NOT NULL")[0][0])
            + f", consumers behind {await consumers_behind(servers)}") from None
    notifications = dict(rows(notifications_db, "SELECT status, count(*) FROM notifications "
                                                "WHERE purpose = 'reply' GROUP BY status"))
    assert notifications == {"sent": public_answers}
    # Each answer's e-mail carries its notification's Message-ID: count the sink's messages by it (a sent
    # notification keeps no body; its message_id leads to the answer in conversations). A notification taken
    # over from a sender killed between the SMTP server's acceptance and its bookkeeping (flagged
    # UNKNOWN_OUTCOME: SMTP cannot tell whether it arrived) may have been mailed a second time, with the same
    # Message-ID; any other count but one fails.
    by_message_id = Counter(str(message["Message-ID"]) for message in sink.messages)
    body_of = dict(rows(conversations_db, "SELECT id, body FROM messages WHERE body LIKE '[a%'"))
    mailed: dict[str, int] = {}
    taken_over: set[str] = set()
    for message_id, email_id, last_error in rows(notifications_db, "SELECT message_id, email_message_id, last_error "
                                                                   "FROM notifications WHERE purpose = 'reply'"):
        body = body_of[message_id]
        mailed[body] = mailed.get(body, 0) + by_message_id.get(email_id, 0)
        if last_error and last_error.startswith(UNKNOWN_OUTCOME):
            taken_over.add(body)
    assert {a: mailed.get(a) for a in answers if mailed.get(a) != 1 and a not in taken_over} == {}
    assert {a: n for a, n in mailed.items() if n != 1 and not (a in taken_over and n == 2)} == {}
    twice = sum(1 for n in mailed.values() if n == 2)
    assert sum(mailed.values()) == public_answers + twice == len(sink.messages)

    async def caught_up() -> bool:
        return all(lag == (0, 0) for lag in (await consumers_behind(servers)).values())

    await eventually(caught_up, timeout=CATCH_UP)
    lags = await consumers_behind(servers)
    conversations_known = rows(notifications_db, "SELECT count(*) FROM conversation_addresses")[0][0]
    assert conversations_known == rows(conversations_db, "SELECT count(*) FROM conversations")[0][0]
    return {"customer_messages": len(customer_bodies), "answers": len(answers), "stored": len(stored),
            "public_answers": public_answers, "mailed": sum(mailed.values()), "notifications": notifications,
            "taken_over": len(taken_over), "mailed_twice": twice,
            "consumers": len(lags), "conversations": conversations_known}


def report(clients: list[Client], counts: dict[str, object]) -> str:
    """The lines a fault test prints: requests, refusals, what was stored and mailed, the longest pause."""
    sent = sum(len(c.sent) for c in clients)
    refusals = dict(Counter(status for c in clients for _, status, _, _ in c.sent if not accepted_status(status)))
    accepted = int(counts["customer_messages"]) + int(counts["answers"])  # type: ignore[call-overload]
    return "\n".join([
        f"  requests sent {sent}, accepted {accepted} (customer messages {counts['customer_messages']}, answers "
        f"{counts['answers']}), attempts not accepted {sum(c.refused() for c in clients)} {refusals}; "
        f"stored {counts['stored']}, each once",
        f"  answers e-mailed {counts['mailed']} of {counts['public_answers']} stored, each once but "
        f"{counts['mailed_twice']} of the {counts['taken_over']} taken over from a killed sender; notifications "
        f"{counts['notifications']}; conversations known to notifications {counts['conversations']}; "
        f"durable consumers caught up: {counts['consumers']}",
        f"  longest pause a client saw {max(c.longest_pause() for c in clients):.2f} s; slowest request "
        f"{max(ended - began for c in clients for _, _, began, ended in c.sent):.2f} s",
    ])
