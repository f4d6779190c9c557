"""Event logs: a service's stream written out as JSON lines (`portico events export`) and read back
into a server (`portico events import`).

The log format is the one of `tests/replay/`: one event envelope (`contracts.envelope.EventEnvelope`)
a line, as JSON, in stream order; blank lines are skipped. Export writes each message's data exactly
as stored. Import publishes each line to its event's subject with `Nats-Msg-Id` = the envelope id,
so JetStream stores an event once within the stream's duplicate window
(`services.runtime.nats.DUPLICATE_WINDOW`, 2 minutes); imported again later, it is stored a second
time and consumers' inboxes apply it once (`services.runtime.inbox`).
"""

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import nats.errors
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError
from pydantic import ValidationError

from contracts.envelope import EventEnvelope, event_class
from contracts.subjects import STREAMS

# Messages fetched at a time while exporting.
EXPORT_BATCH = 500


class LogError(ValueError):
    """A stream name, a `--since` value or a log line that cannot be used; the message says which and why."""


def stream_name(name: str) -> str:
    """The stream `name` designates: a stream (`AUTH`) or its service (`auth`), in any case.
    Raises LogError naming the known streams (`contracts.subjects.STREAMS`)."""
    wanted = name.strip().upper()
    if wanted in STREAMS.values():
        return wanted
    raise LogError(f"unknown stream {name!r}; one of {', '.join(STREAMS.values())}")


def parse_since(since: str | None) -> dict[str, object]:
    """Where an export starts, as consumer options: from the start (None), from a stream sequence
    (`"1042"`, a positive integer) or from the events stored at an RFC 3339 time on
    (`"2026-11-01T10:00:00Z"`; a time without zone is refused). Raises LogError."""
    if since is None or since == "":
        return {"deliver_policy": DeliverPolicy.ALL}
    text = since.strip()
    if text.isdigit():
        if int(text) < 1:
            raise LogError("--since: a stream sequence starts at 1")
        return {"deliver_policy": DeliverPolicy.BY_START_SEQUENCE, "opt_start_seq": int(text)}
    try:
        at = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise LogError(f"--since {since!r}: neither a stream sequence nor an RFC 3339 time "
                       "(e.g. 2026-11-01T10:00:00Z)") from None
    if at.tzinfo is None:
        raise LogError(f"--since {since!r}: give the time zone (e.g. 2026-11-01T10:00:00Z)")
    return {"deliver_policy": DeliverPolicy.BY_START_TIME, "opt_start_time": at.astimezone(UTC)}


async def export_stream(js: JetStreamContext, stream: str, write: Callable[[str], None],
                        since: str | None = None) -> int:
    """Write every stored message of `stream` (from `since`, see `parse_since`) to `write`, one JSON
    line each (without the newline), in stream order; returns how many.

    Reads through an ephemeral consumer that acknowledges nothing (deleted by the server a minute
    after the export ends), so no durable consumer or stream changes. Messages stored after the export
    began are not included. Raises LogError for an unknown stream or one not created on this server.
    """
    stream = stream_name(stream)
    start = parse_since(since)
    try:
        info = await js.stream_info(stream)
    except NotFoundError:
        raise LogError(f"stream {stream} does not exist on this server yet (no service has started "
                       "against it)") from None
    last = info.state.last_seq
    if info.state.messages == 0:
        return 0
    if start.get("opt_start_seq", 0) > last:  # type: ignore[operator]
        return 0
    consumer = await js.add_consumer(stream, ConsumerConfig(ack_policy=AckPolicy.NONE, inactive_threshold=60,
                                                            **start))  # type: ignore[arg-type]
    remaining = consumer.num_pending or 0
    not_before = start.get("opt_start_time")
    written = 0
    sub = await js.pull_subscribe_bind(consumer=consumer.name, stream=stream)
    try:
        while remaining > 0:
            try:
                msgs = await sub.fetch(min(EXPORT_BATCH, remaining), timeout=5)
            except (nats.errors.TimeoutError, TimeoutError):
                break
            for msg in msgs:
                if msg.metadata.sequence.stream > last:
                    return written
                remaining -= 1
                if not_before is not None and msg.metadata.timestamp < not_before:
                    continue  # a start time after the last event: the server starts at that event anyway
                write(_one_line(msg.data))
                written += 1
    finally:
        await sub.unsubscribe()
        try:
            await js.delete_consumer(stream, consumer.name)
        except Exception:  # gone already; the server drops it after `inactive_threshold` anyway
            pass
    return written


def _one_line(data: bytes) -> str:
    text = data.decode("utf-8", errors="replace")
    if "\n" not in text and "\r" not in text:
        return text
    try:
        return json.dumps(json.loads(text), ensure_ascii=False)
    except ValueError:
        return json.dumps(text)  # not JSON at all: kept visible, refused by `import` with its line number


@dataclass(frozen=True)
class LogLine:
    """One event of a log: its line number (from 1), the subject it goes to, its id and the text as read."""

    number: int
    subject: str
    event_id: str
    text: str


def read_log(lines: Iterable[str]) -> list[LogLine]:
    """Every event of a log, validated before anything is published. Raises LogError naming the first
    line (numbered from 1) that is not an envelope or whose event type and version this code does not
    know (`contracts.envelope.event_class`)."""
    events = []
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text:
            continue
        try:
            envelope = EventEnvelope.model_validate_json(text)
        except ValidationError as exc:
            problem = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'line'}: {e['msg']}" for e in exc.errors()[:3])
            raise LogError(f"line {number}: not an event envelope ({problem})") from None
        if event_class(envelope.type, envelope.version) is None:
            raise LogError(f"line {number}: unknown event {envelope.type} v{envelope.version}")
        events.append(LogLine(number, envelope.subject, envelope.id, text))
    return events


@dataclass(frozen=True)
class Imported:
    """What an import did: `stored` events newly stored, `duplicates` the server already had within
    its duplicate window."""

    stored: int
    duplicates: int


async def import_log(js: JetStreamContext, events: list[LogLine]) -> Imported:
    """Publish each event (from `read_log`) to its subject with `Nats-Msg-Id` = its id, in order,
    waiting for each acknowledgement. The streams must exist (`services.runtime.nats.ensure_streams`)."""
    stored = duplicates = 0
    for event in events:
        ack = await js.publish(event.subject, event.text.encode(), headers={"Nats-Msg-Id": event.event_id})
        if ack.duplicate:
            duplicates += 1
        else:
            stored += 1
    return Imported(stored, duplicates)
