"""contracts/: subjects, the envelope, the required events and their documentation, error codes."""

import pytest
from pydantic import BaseModel

from contracts.envelope import (
    EventEnvelope,
    envelope_model,
    event_class,
    registered_events,
)
from contracts.errors import HTTP_STATUS, ErrorCode, ServiceError
from contracts.events import ConversationReopened, MessagePosted, UserRegistered
from contracts.subjects import dlq_subject, event_subject, rpc_subject, snake


def test_subjects_follow_the_design():
    assert UserRegistered.subject() == "events.auth.user_registered.v1"
    assert MessagePosted.subject() == "events.conversations.message_posted.v1"
    assert ConversationReopened.subject() == "events.conversations.conversation_reopened.v1"
    assert event_subject("kb", "ArticlePublished", 2) == "events.kb.article_published.v2"
    assert rpc_subject("auth", "ping") == "rpc.auth.ping"
    assert dlq_subject("conversations-from-auth", "events.auth.user_registered.v1") == \
        "dlq.conversations-from-auth.events.auth.user_registered.v1"
    assert snake("ConversationReopened") == "conversation_reopened"


def test_envelope_has_the_design_fields_and_round_trips():
    assert list(EventEnvelope.model_fields) == [
        "id", "type", "version", "occurred_at", "org_id", "aggregate_id", "aggregate_version",
        "correlation_id", "causation_id", "data"]
    event = UserRegistered(user_id="u1", email="a@example.com", kind="customer", method="email")
    envelope = EventEnvelope.wrap(event, org_id="o1", aggregate_id="u1", aggregate_version=1, correlation_id="c1")
    again = EventEnvelope.model_validate_json(envelope.model_dump_json())
    assert again == envelope
    assert again.subject == UserRegistered.subject()
    assert again.occurred_at.tzinfo is not None
    assert UserRegistered.model_validate(again.data) == event


def test_event_ids_sort_by_creation():
    event = UserRegistered(user_id="u1", email="a@example.com", kind="customer", method="email")
    ids = [EventEnvelope.wrap(event, org_id="o", aggregate_id="u1", aggregate_version=1, correlation_id="c").id
           for _ in range(50)]
    assert len(set(ids)) == 50
    timestamps = [i[:10] for i in ids]  # a ULID's first 10 characters are its millisecond timestamp
    assert timestamps == sorted(timestamps)


def test_consumers_ignore_unknown_fields():
    data = {"user_id": "u1", "email": "a@example.com", "kind": "customer", "method": "email", "added_in_v1_1": 7}
    assert UserRegistered.model_validate(data).user_id == "u1"


@pytest.mark.parametrize("event", [UserRegistered, MessagePosted, ConversationReopened])
def test_required_events_are_registered_and_every_field_documented(event):
    assert event_class(event.type_name(), event.version) is event
    assert event in registered_events()
    assert event.__doc__
    for name, field in event.model_fields.items():
        assert field.description, f"{event.__name__}.{name} has no description"
    schema = envelope_model(event).model_json_schema()
    assert schema["properties"]["data"]["$ref"].endswith(event.__name__)


def test_envelope_fields_are_documented():
    for name, field in EventEnvelope.model_fields.items():
        assert field.description, name


def test_every_error_code_has_an_http_status():
    assert set(HTTP_STATUS) == set(ErrorCode)
    error = ServiceError(ErrorCode.unknown_portal, "No portal 'x'.")
    assert error.status == 404
    assert error.body().model_dump(mode="json") == {"error": "unknown_portal", "message": "No portal 'x'."}
    assert isinstance(error.body(), BaseModel)


def test_no_event_field_hides_what_every_event_has():
    """A field named like `version` or `subject` would replace the class's own and break subjects."""
    from contracts.envelope import Event, registered_events

    reserved = {name for name in dir(Event) if not name.startswith("_")}
    for event in registered_events():
        assert not reserved & set(event.model_fields), (event.__name__, reserved & set(event.model_fields))


@pytest.mark.parametrize("text", ["a\u0000b", "\ud800", "x\udfff"])
def test_requests_refuse_text_no_database_can_store(text):
    from pydantic import ValidationError

    from contracts.rpc import UNSTORABLE_TEXT_ERRORS, CreateApiKey, Ping

    actor = {"org_id": "01JD8ZQ4S5K4W3YB8W1T0VQ9E3", "role": "org.admin", "principal": "key:1"}
    assert Ping() == Ping()
    with pytest.raises(ValidationError) as refused:
        CreateApiKey.model_validate({"actor": actor, "name": text, "role": "org.admin"})
    assert refused.value.errors()[0]["type"] in UNSTORABLE_TEXT_ERRORS
