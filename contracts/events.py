"""Domain events. Subject of each: `events.<service>.<event_name_snake>.v<version>`."""

from typing import Literal

from pydantic import BaseModel, Field

from contracts.envelope import Event, register
from contracts.states import AuthorKind, Visibility

Channel = Literal["chat", "email", "messenger", "form", "instagram", "portal", "sms", "twitter", "whatsapp"]
CHANNELS: tuple[str, ...] = Channel.__args__


@register
class UserRegistered(Event):
    """auth created an account for an e-mail it had not seen in this org (customer or staff).

    Published once per account, whatever the sign-in method; a retried first login
    reuses the account and publishes nothing more.
    """

    service = "auth"

    user_id: str = Field(description="The new account's id; also the envelope's aggregate_id.",
                         examples=["01JD8ZQ4S5K4W3YB8W1T0VQ9E2"])
    email: str = Field(description="E-mail address, lower-cased; unique in the org.", examples=["ana@example.com"])
    display_name: str | None = Field(default=None, description="Name to show, when known.", examples=["Ana Silva"])
    kind: Literal["customer", "staff", "anonymous"] = Field(
        description="`customer` signs in to portals, `staff` works in the agent API, "
                    "`anonymous` is a portal's shared Anonymous user.", examples=["customer"])
    method: Literal["email", "sso", "custom_sign_on", "anonymous", "admin", "seed", "channel"] = Field(
        description="How the account came to exist.", examples=["email"])
    portal: str | None = Field(default=None, description="Slug of the portal the account was created through.",
                               examples=["demo"])
    external_id: str | None = Field(default=None, description="The company's own id for the person (SSO `externalId`).")


class AttachmentRef(BaseModel):
    """An attachment of a message, stored in the Object Store."""

    attachment_id: str = Field(description="Object Store key of the file.")
    filename: str = Field(description="Sanitised file name.", examples=["invoice.pdf"])
    content_type: str = Field(description="Type checked from the content.", examples=["application/pdf"])
    size: int = Field(description="Size in bytes.", ge=0)
    sha256: str = Field(description="Hex SHA-256 of the content.")


@register
class MessagePosted(Event):
    """A message was added to a conversation, by the customer, an agent or the system."""

    service = "conversations"

    conversation_id: str = Field(description="Conversation the message belongs to; the envelope's aggregate_id.")
    message_id: str = Field(description="The message's own id.")
    portal: str = Field(description="Slug of the portal the conversation belongs to.", examples=["demo"])
    customer_id: str = Field(description="Reporter of the conversation: the customer the answer goes to.")
    author_id: str = Field(description="Who wrote it: a customer's or a staff member's user id.")
    author_kind: AuthorKind = Field(description="Which side wrote it.")
    visibility: Visibility = Field(
        description="`internal` is an agents' note: never shown, sent or e-mailed to a customer.")
    channel: Channel = Field(description="Channel the message travels on; replies go back on it.", examples=["portal"])
    body: str = Field(description="Text of the message (at most 10,240 characters).")
    attachments: list[AttachmentRef] = Field(default_factory=list, description="Files sent with the message.")
    in_reply_to: str | None = Field(default=None, description="E-mail Message-ID it answers, for e-mail threading.")
    conversation_subject: str | None = Field(default=None,
                                            description="The conversation's subject when the message was posted.")


@register
class ConversationReopened(Event):
    """A closed conversation was opened again; every message after it goes through the `portal` channel."""

    service = "conversations"

    conversation_id: str = Field(description="The conversation; the envelope's aggregate_id.")
    portal: str = Field(description="Slug of the portal.", examples=["demo"])
    customer_id: str = Field(description="Reporter of the conversation.")
    reopened_by: str = Field(description="User id of whoever reopened it (customer or agent).")
    reopened_by_kind: Literal["customer", "agent"] = Field(description="Which side reopened it.")
    previous_channel: Channel = Field(description="Channel the conversation was on before the reopen.")
    channel: Literal["portal"] = Field(default="portal", description="Channel from now on: always `portal`.")


@register
class IdentityLinked(Event):
    """A browser that was anonymous or e-mail-unverified signed in (or moved on to e-mail access).

    With `method` `sso`, `custom_sign_on` or `email` (a verified code), what that browser created
    under the earlier identity now belongs to the signed-in customer, who becomes its reporter; the
    earlier identity stays on as a participant. With `email_unverified` (an anonymous browser asked
    for an e-mail code) nothing changes hands yet: the browser keeps seeing what it created.
    """

    service = "auth"

    portal: str = Field(description="Portal slug.", examples=["demo"])
    from_user_id: str = Field(description="The earlier identity: the portal's Anonymous user or the unverified account.")
    from_method: Literal["anonymous", "email_unverified"] = Field(description="How the earlier session was opened.")
    from_session: str = Field(description="Key of the earlier session (SHA-256 of its token; not a usable token). "
                                          "Conversations record it to know what that browser created.")
    to_user_id: str = Field(description="The account the browser is signed in as now; the envelope's aggregate_id.")
    to_session: str | None = Field(default=None, description="Key of the browser's new session.")
    method: Literal["sso", "custom_sign_on", "email", "email_unverified"] = Field(
        description="How the browser signed in now.")


@register
class ConversationCreated(Event):
    """A conversation was started: by a customer in the portal, from an inbound channel, or by a reopen policy."""

    service = "conversations"

    conversation_id: str = Field(description="The new conversation; the envelope's aggregate_id.")
    portal: str = Field(description="Slug of the portal it belongs to.", examples=["demo"])
    customer_id: str = Field(description="Reporter: the customer it is for.")
    channel: Channel = Field(description="Channel it started on.", examples=["portal"])
    conversation_subject: str = Field(description="Subject when created.", examples=["Invoice is wrong"])
    linked_from: str | None = Field(default=None, description="The closed conversation it continues, when a "
                                                                "reopen started a new one instead.")


@register
class ConversationClosed(Event):
    """An agent closed a conversation."""

    service = "conversations"

    conversation_id: str = Field(description="The conversation; the envelope's aggregate_id.")
    portal: str = Field(description="Slug of the portal.", examples=["demo"])
    customer_id: str = Field(description="Reporter of the conversation.")
    closed_by: str = Field(description="User id (or `key:<id>`) of who closed it.")


@register
class MessageRedacted(Event):
    """An agent redacted a message: its text and files are erased; consumers drop any copy they keep."""

    service = "conversations"

    conversation_id: str = Field(description="The conversation; the envelope's aggregate_id.")
    message_id: str = Field(description="The redacted message.")
    redacted_by: str = Field(description="Who redacted it.")
    customer_id: str | None = Field(default=None, description="Reporter of the conversation (absent on events "
                                                              "published before it was added).")


@register
class ReporterChanged(Event):
    """A conversation now belongs to another customer; the earlier reporter stays on as a participant."""

    service = "conversations"

    conversation_id: str = Field(description="The conversation; the envelope's aggregate_id.")
    portal: str = Field(description="Slug of the portal.", examples=["demo"])
    from_customer_id: str = Field(description="The earlier reporter (anonymous or unverified identity).")
    to_customer_id: str = Field(description="The new reporter.")
    reason: Literal["identity_linked"] = Field(description="Why it changed.")


@register
class EmailReceived(Event):
    """notifications accepted an e-mail for the reply domain; conversations posts it (channel `email`).

    The sender was checked: for a reply, a participant of the conversation it answers; for a new
    message to a portal's address, the customer (created if new) it becomes a conversation for.
    """

    service = "notifications"

    email_message_id: str = Field(description="The e-mail's Message-ID: the same e-mail is posted once.")
    portal: str = Field(description="Portal slug.", examples=["demo"])
    conversation_id: str | None = Field(description="The conversation it answers (found by reply token, "
                                                    "In-Reply-To/References or subject tag); null for a new one.")
    customer_id: str = Field(description="The sender's account.")
    from_email: str = Field(description="Sender address, lower-cased.")
    conversation_subject: str = Field(description="Subject of the e-mail (for a new conversation).")
    body: str = Field(description="The text, with the quoted earlier thread and the signature cut off.")
    attachments: list[AttachmentRef] = Field(default_factory=list, description="Files, checked by content.")
    matched_by: Literal["reply_token", "in_reply_to", "subject_tag", "new"] = Field(
        description="How the conversation was found.")


@register
class NotificationSent(Event):
    """A customer was told of a message: an e-mail handed to the mail server, or a channel webhook delivered."""

    service = "notifications"

    notification_id: str = Field(description="The notification; the envelope's aggregate_id.")
    cause_event_id: str = Field(description="The event it answers (MessagePosted) or the request id.")
    kind: Literal["email", "webhook"]
    channel: Channel | None = Field(default=None, description="Channel of the conversation, for replies.")
    conversation_id: str | None = None
    email_message_id: str | None = Field(default=None, description="Message-ID of the e-mail sent.")
    attempts: int = Field(description="Tries it took.")


@register
class NotificationFailed(Event):
    """A notification could not be delivered after its last try; operators see it and can retry it."""

    service = "notifications"

    notification_id: str = Field(description="The notification; the envelope's aggregate_id.")
    cause_event_id: str
    kind: Literal["email", "webhook"]
    channel: Channel | None = None
    conversation_id: str | None = None
    error: str = Field(description="The last error (no secrets, no message text).")
    attempts: int


@register
class EmailBounced(Event):
    """An e-mail Portico sent came back undelivered (a bounce or delivery status notification,
    RFC 3464): the customer did not get it. Agents see it on the conversation."""

    service = "notifications"

    notification_id: str = Field(description="The notification; the envelope's aggregate_id.")
    conversation_id: str | None = Field(default=None, description="The conversation the e-mail was about.")
    message_id: str | None = Field(default=None, description="The conversation message the e-mail carried.")
    purpose: str = Field(description="What the e-mail was: `reply` (an answer), `access_code`, ...")
    recipient: str | None = Field(default=None, description="The address that did not take it, as reported.")
    reason: str = Field(description="What the receiving mail server said, at most 300 characters.")


@register
class ArticlePublished(Event):
    """A knowledge-base article was published, or a published one changed."""

    service = "kb"

    article_id: str = Field(description="The article; the envelope's aggregate_id.")
    portal: str = Field(description="Portal slug.", examples=["demo"])
    slug: str = Field(description="The article's address in the portal.", examples=["reset-your-password"])
    title: str
    visibility: Visibility
    locale: str = Field(examples=["en"])
    revision: int = Field(description="Revision published.")


@register
class ArticleUnpublished(Event):
    """An article is no longer readable: unpublished (back to draft) or deleted."""

    service = "kb"

    article_id: str = Field(description="The article; the envelope's aggregate_id.")
    portal: str = Field(description="Portal slug.", examples=["demo"])
    slug: str
    reason: Literal["unpublished", "deleted"]
