"""The envelope every event travels in, and the base class of event payloads."""

from datetime import UTC, datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field
from ulid import ULID

from contracts.subjects import event_subject


def new_id() -> str:
    """A unique id that sorts by creation time (ULID)."""
    return str(ULID())


class Event(BaseModel):
    """Payload of a domain event. Subclasses set `service`, and `version` when it is not 1."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    service: ClassVar[str]
    version: ClassVar[int] = 1

    @classmethod
    def type_name(cls) -> str:
        return cls.__name__

    @classmethod
    def subject(cls) -> str:
        return event_subject(cls.service, cls.type_name(), cls.version)


class EventEnvelope(BaseModel):
    """One event on the backbone: metadata every consumer relies on, and the payload in `data`."""

    model_config = ConfigDict(extra="ignore")

    id: str = Field(description="Unique, time-sortable event id (ULID); also the JetStream `Nats-Msg-Id`.",
                    examples=["01JD8ZQ4S5K4W3YB8W1T0VQ9E2"])
    type: str = Field(description="Event name, past tense.", examples=["UserRegistered"])
    version: int = Field(description="Major version of the payload schema; part of the subject.", examples=[1])
    occurred_at: datetime = Field(description="When the state change was committed (UTC).")
    org_id: str = Field(description="Organisation the event belongs to.", examples=["org_demo"])
    aggregate_id: str = Field(description="Id of the entity whose state changed.")
    aggregate_version: int = Field(
        description="Version of that entity after the change; consumers never apply an older one over a newer.",
        examples=[1], ge=0)
    correlation_id: str = Field(description="Id of the request that started the chain (HTTP, RPC, events).")
    causation_id: str | None = Field(default=None, description="Id of the event or request that caused this one.")
    data: dict[str, Any] = Field(description="The payload: the event model's fields.")

    @classmethod
    def wrap(cls, event: Event, *, org_id: str, aggregate_id: str, aggregate_version: int,
             correlation_id: str, causation_id: str | None = None) -> "EventEnvelope":
        return cls(
            id=new_id(), type=event.type_name(), version=event.version,
            occurred_at=datetime.now(UTC), org_id=org_id, aggregate_id=aggregate_id,
            aggregate_version=aggregate_version, correlation_id=correlation_id,
            causation_id=causation_id, data=event.model_dump(mode="json"),
        )

    @property
    def subject(self) -> str:
        return event_subject(_registry_service(self.type, self.version), self.type, self.version)


_REGISTRY: dict[tuple[str, int], type[Event]] = {}


def register(cls: type[Event]) -> type[Event]:
    """Class decorator: makes an event known by its (type, version)."""
    _REGISTRY[(cls.type_name(), cls.version)] = cls
    return cls


def event_class(type_name: str, version: int) -> type[Event] | None:
    return _REGISTRY.get((type_name, version))


def registered_events() -> list[type[Event]]:
    return list(_REGISTRY.values())


def _registry_service(type_name: str, version: int) -> str:
    cls = event_class(type_name, version)
    if cls is None:
        raise KeyError(f"unknown event {type_name} v{version}")
    return cls.service


def envelope_model(event: type[Event]) -> type[EventEnvelope]:
    """The envelope with `data` typed as `event`: what is actually on the subject (for AsyncAPI)."""
    from pydantic import create_model

    return create_model(  # type: ignore[call-overload,no-any-return]
        f"{event.type_name()}V{event.version}", __base__=EventEnvelope, __doc__=event.__doc__,
        data=(event, Field(description=f"The {event.type_name()} payload.")))
