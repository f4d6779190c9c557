"""Subjects and streams of the event backbone and of request/reply."""

import re

SERVICES = ("auth", "conversations", "notifications", "kb")

# One JetStream stream per producing service.
STREAMS: dict[str, str] = {service: service.upper() for service in SERVICES}

DLQ_STREAM = "DLQ"
DLQ_SUBJECTS = "dlq.>"


def stream_subjects(service: str) -> str:
    return f"events.{service}.>"


def snake(name: str) -> str:
    """`UserRegistered` -> `user_registered`."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def event_subject(service: str, event_name: str, version: int) -> str:
    return f"events.{service}.{snake(event_name)}.v{version}"


def rpc_subject(service: str, operation: str) -> str:
    return f"rpc.{service}.{operation}"


def dlq_subject(consumer: str, original_subject: str) -> str:
    """Where a consumer puts an event it gave up on: `dlq.<consumer>.<original subject>`."""
    return f"dlq.{consumer}.{original_subject}"
