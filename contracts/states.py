"""The states and kinds Portico's records take, as enums shared by the contracts and the services.

Each is a `StrEnum`: it travels and is stored as its value (`"open"`), and compares equal to it.
"""

from enum import StrEnum


class ConversationStatus(StrEnum):
    """Whether a conversation is being worked on."""

    open = "open"
    closed = "closed"


class ReopenPolicy(StrEnum):
    """What a customer's message to a closed conversation does (`domain.message_to_closed`)."""

    always = "always"                      # reopen it
    within_days = "within_days"            # reopen it within `reopen_within_days` of closing, else a new one
    new_conversation = "new_conversation"  # a new conversation linked to it


class ViewerRole(StrEnum):
    """Why someone sees a conversation in My Conversations (`domain.SEES_CONVERSATION`)."""

    reporter = "reporter"        # the customer it is for
    participant = "participant"  # an earlier identity of the reporter, or someone who wrote in it
    creator = "creator"          # the anonymous or unverified browser that started it
    former = "former"            # an unverified address it was linked away from: kept, but sees nothing


class MessageKind(StrEnum):
    """An entry of a conversation's timeline."""

    message = "message"  # written by a person
    note = "note"        # an agents' internal note
    event = "event"      # closed, reopened, subject changed, ...


class Visibility(StrEnum):
    """Who may read a message or an article."""

    public = "public"      # the customer (or everyone, for an article)
    internal = "internal"  # staff only


class AuthorKind(StrEnum):
    """Which side wrote a timeline entry."""

    customer = "customer"
    agent = "agent"
    system = "system"


class NotificationStatus(StrEnum):
    """Where an e-mail or webhook to a customer stands."""

    pending = "pending"      # to be tried (again)
    sent = "sent"            # handed to the mail server or the webhook
    failed = "failed"        # gave up after the last try; an operator may retry it
    cancelled = "cancelled"  # its message was redacted before it left
    bounced = "bounced"      # handed over, then came back undelivered
