"""Domain events. Subject of each: `events.<service>.<event_name_snake>.v<version>`."""

from typing import Literal

from pydantic import BaseModel, Field

from contracts.envelope import Event, register

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
    method: Literal["email", "sso", "custom_sign_on", "anonymous", "admin", "seed"] = Field(
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
    author_kind: Literal["customer", "agent", "system"] = Field(description="Which side wrote it.")
    visibility: Literal["public", "internal"] = Field(
        description="`internal` is an agents' note: never shown, sent or e-mailed to a customer.")
    channel: Channel = Field(description="Channel the message travels on; replies go back on it.", examples=["portal"])
    body: str = Field(description="Text of the message (at most 10,240 characters).")
    attachments: list[AttachmentRef] = Field(default_factory=list, description="Files sent with the message.")
    in_reply_to: str | None = Field(default=None, description="E-mail Message-ID it answers, for e-mail threading.")


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
    """A browser that was anonymous or e-mail-unverified signed in by SSO (or custom sign-on).

    What that browser created under the earlier identity now belongs to the signed-in customer,
    who becomes its reporter; the earlier identity stays on as a participant.
    """

    service = "auth"

    portal: str = Field(description="Portal slug.", examples=["demo"])
    from_user_id: str = Field(description="The earlier identity: the portal's Anonymous user or the unverified account.")
    from_method: Literal["anonymous", "email_unverified"] = Field(description="How the earlier session was opened.")
    from_session: str = Field(description="Key of the earlier session (SHA-256 of its token; not a usable token). "
                                          "Conversations record it to know what that browser created.")
    to_user_id: str = Field(description="The customer who signed in; the envelope's aggregate_id.")
    method: Literal["sso", "custom_sign_on"] = Field(description="How the customer signed in.")
