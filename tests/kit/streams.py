"""Reading the events a stream holds, as the tests check them."""

import nats
from contracts.envelope import EventEnvelope


async def stream_events(nats_url: str, subject: str) -> list[EventEnvelope]:
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        sub = await js.subscribe(subject, ordered_consumer=True)
        found = []
        try:
            while True:
                msg = await sub.next_msg(timeout=0.5)
                found.append(EventEnvelope.model_validate_json(msg.data))
        except nats.errors.TimeoutError:
            pass
        return found
    finally:
        await nc.close()
