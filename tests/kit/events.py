"""Publishing events onto a stream directly, as a producer would."""

import nats
from contracts.envelope import EventEnvelope, new_id
from contracts.events import UserRegistered


def user_registered(email: str, *, version: int = 1, user_id: str | None = None,
                    correlation: str = "test") -> EventEnvelope:
    user_id = user_id or new_id()
    return EventEnvelope.wrap(
        UserRegistered(user_id=user_id, email=email, kind="customer", method="email", portal="demo"),
        org_id="org_test", aggregate_id=user_id, aggregate_version=version, correlation_id=correlation)


async def publish(nats_url: str, envelopes: list[EventEnvelope], *, msg_id_suffix: str = "") -> None:
    """Publish envelopes as the auth relay would; a suffix makes JetStream treat a re-send as new."""
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        for envelope in envelopes:
            await js.publish(UserRegistered.subject(), envelope.model_dump_json().encode(),
                             headers={"Nats-Msg-Id": envelope.id + msg_id_suffix})
    finally:
        await nc.close()
