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


# Core NATS subjects on which a replica announces a committed change before it answers, so that every
# replica's cache (`services.runtime.announced.AnnouncedCache`) forgets what the change names.
PORTALS_CHANGED = "auth.portals.changed"  # the message: a portal's slug (its settings or secrets changed)
API_KEYS_CHANGED = "auth.api_keys.changed"  # the message: the id of an API key revoked or changed
# The message: a client address whose API key auth refused (wrong, or sent while the address must wait);
# every gateway forgets the keys it kept for that address (`services.gateway.auth.ApiKeyCache`).
API_KEYS_REFUSED = "auth.api_keys.refused"
PORTAL_SETTINGS_CHANGED = "conversations.portal_settings.changed"  # the message: a portal's slug
KB_PORTALS_CHANGED = "kb.portals.changed"  # the message: the slug of the portal whose kb switches changed
# The message: the `sessions` bucket key of a session ended (logout, replaced, a staff member disabled or
# given another role); every gateway forgets what it kept of it (`services.gateway.auth.SessionCache`).
SESSIONS_ENDED = "auth.sessions.ended"
ANNOUNCEMENTS = (PORTALS_CHANGED, API_KEYS_CHANGED, API_KEYS_REFUSED, PORTAL_SETTINGS_CHANGED, KB_PORTALS_CHANGED,
                 SESSIONS_ENDED)
