"""The operations a replay log is recorded from, and what the replay tests compare: every event every
consumer handles happens at least once.

- auth: the demo admin, Ana and an agent register (`UserRegistered`); an anonymous browser that started a
  conversation signs in by SSO as Lina (`IdentityLinked`).
- conversations: Ana's and the anonymous conversation (`ConversationCreated`, `MessagePosted`), Lina taking
  it over (`ReporterChanged`), two agent answers, the second one redacted (`MessageRedacted`).
- notifications: Ana's e-mail reply to the first answer (`EmailReceived`) and a bounce of that answer
  (`EmailBounced`), besides the answers it e-mailed (`NotificationSent`).
"""

import time
from pathlib import Path

import jwt

from services.runtime.backlog import consumer_lags
from tests.helpers import rows, settled_counts, wait_until
from tests.kit.conversations import start
from tests.kit.email import answer, reply_to
from tests.kit.mail import eventually, send_mail, send_raw

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "mail"
SERVICES = ("auth", "conversations", "notifications", "kb")
ANA_SUBJECT = "Invoice is wrong"
LINA_SUBJECT = "Cannot log in"
FIRST_ANSWER = "Could you confirm your delivery address?"
SECOND_ANSWER = "Your card number is 4111 1111 1111 1111"  # redacted afterwards
ANA_REPLY = "Yes: 12 Harbour Street, Leith."

# What each consuming service keeps of other services' events: its read models (rebuilt by
# `portico replay --rebuild`), each as a query in a stable order.
READ_MODELS = {
    "conversations": {"customers": "SELECT id, org_id, email, display_name, kind, registered_at, version "
                                   "FROM customers ORDER BY id"},
    "notifications": {
        "customer_addresses": "SELECT id, org_id, email, display_name, kind, version FROM customer_addresses "
                              "ORDER BY id",
        # Without `version`: the redacted message's MessagePosted is erased from the stream, so a rebuilt
        # row keeps the version of the last event still there (lower than live; the addressing is the same).
        "conversation_addresses": "SELECT id, org_id, portal, customer_id, subject "
                                  "FROM conversation_addresses ORDER BY id",
        "participants": "SELECT conversation_id, customer_id FROM participants ORDER BY conversation_id, customer_id",
    },
}


async def drive(demo, sink) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Run the scenario on a live system (`tests.kit.email.demo`); returns the conversation ids
    (`ana`, `lina`) once every consumer has caught up."""
    anonymous = await demo.anonymous()
    lina_cid = (await start(anonymous, subject=LINA_SUBJECT, body="I am locked out"))["id"]
    token = jwt.encode({"email": "lina@example.com", "displayName": "Lina", "iat": int(time.time())}, demo.secret,
                       algorithm="HS256")  # this browser's session cookie goes along: its conversation is linked
    signed_in = await anonymous.post("/api/v1/portals/demo/session/sso", json={"token": token})
    assert signed_in.status_code == 200, signed_in.text

    ana_cid = (await start(demo.ana, subject=ANA_SUBJECT, body="Hello, invoice 42 is wrong"))["id"]
    await answer(demo, ana_cid, FIRST_ANSWER)
    [mail] = await eventually(lambda: sink.to("ana@example.com"))
    assert (await send_mail(demo.smtp_port, reply_to(mail, ANA_REPLY), [str(mail["Reply-To"])]))[0] == 250
    bounce = (CORPUS / "44-postfix-dsn-rfc822.eml").read_bytes()
    values = {"REPLY_ADDRESS": str(mail["Reply-To"]), "ANSWER_MESSAGE_ID": str(mail["Message-ID"]),
              "CONVERSATION_ID": ana_cid, "PORTAL_ADDRESS": "demo@reply.localhost",
              "BOUNCE_ADDRESS": sink.envelope_senders[str(mail["Message-ID"])]}
    for key, value in values.items():
        bounce = bounce.replace(f"{{{{{key}}}}}".encode(), value.encode())
    assert (await send_raw(demo.smtp_port, "", [values["BOUNCE_ADDRESS"]], bounce))[0] == 250

    second = await answer(demo, lina_cid, SECOND_ANSWER)
    message_id = second.get("message", second).get("id")
    redacted = await demo.agent.post(f"/api/v1/agent/conversations/{lina_cid}/messages/{message_id}/redact")
    assert redacted.status_code == 200, redacted.text

    conversations_db = demo.settings.database_url("conversations")
    await eventually(lambda: rows(conversations_db, "SELECT 1 FROM messages WHERE body = :b", b=ANA_REPLY))
    await eventually(lambda: rows(conversations_db, "SELECT 1 FROM messages WHERE event = 'email_bounced'"))
    await caught_up(demo.settings)
    return {"ana": ana_cid, "lina": lina_cid}


async def caught_up(settings) -> None:  # type: ignore[no-untyped-def]
    """Every durable consumer has nothing pending and nothing unacknowledged, and the databases are still."""
    import nats

    nc = await nats.connect(settings.nats_url)
    try:
        async def idle() -> bool:
            lags = await consumer_lags(nc.jetstream())
            return len(lags) == 4 and all(lag.backlog == 0 for lag in lags)

        await wait_until(idle, timeout=30)
    finally:
        await nc.close()
    await settled_counts([settings.database_url(s) for s in SERVICES])


def read_models(settings, service: str) -> dict[str, list[tuple]]:  # type: ignore[no-untyped-def]
    url = settings.database_url(service)
    return {table: rows(url, query) for table, query in READ_MODELS[service].items()}
