"""Request/reply messages of the conversations service (`rpc.conversations.<operation>`)."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from contracts.events import AttachmentRef, Channel
from contracts.rpc import Actor, Reply, Request
from contracts.states import AuthorKind, ConversationStatus, MessageKind, ReopenPolicy

Status = ConversationStatus


class Viewer(BaseModel):
    """The signed-in customer (or anonymous browser) as the gateway read them from the session."""

    user_id: str = Field(description="Account id: a customer, or the portal's Anonymous user.")
    org_id: str
    portal: str = Field(description="Portal the session was opened on.")
    kind: Literal["customer", "anonymous"]
    method: str = Field(description="How the session was opened (`anonymous` and `email_unverified` see only "
                                    "what that browser created).")
    session_key: str = Field(description="SHA-256 of the session token (identifies the browser; not a token).",
                             min_length=64, max_length=64)
    email: str | None = None
    display_name: str | None = None

    @property
    def sees_only_own_browser(self) -> bool:
        return self.kind == "anonymous" or self.method == "email_unverified"


# -- views -------------------------------------------------------------------------------------

class AttachmentView(BaseModel):
    id: str
    filename: str
    content_type: str
    size: int
    sha256: str


class MessageView(BaseModel):
    id: str
    kind: MessageKind = Field(
        description="`message` from a person, `note` an agents' internal note (never shown to customers), "
                    "`event` a timeline entry (closed, reopened, subject changed).")
    author_id: str | None
    author_kind: AuthorKind
    author_name: str | None = None
    channel: Channel
    body: str | None = Field(description="Null when redacted.")
    redacted: bool = False
    event: str | None = Field(default=None, description="For `event` entries: closed, reopened, subject_changed, "
                                                         "assigned, reporter_changed.")
    detail: dict[str, object] = Field(default_factory=dict, description="For `event` entries: what changed.")
    attachments: list[AttachmentView] = Field(default_factory=list)
    created_at: datetime


class ConversationSummary(BaseModel):
    id: str
    portal: str
    subject: str
    status: Status
    channel: Channel = Field(description="Channel the conversation started on.")
    created_at: datetime
    last_activity_at: datetime
    preview: str = Field(description="Start of the last message the customer can see.")
    unread: bool = Field(description="An agent answered since the customer last opened it.")
    version: int = Field(default=0, description="Grows with every change of the conversation; a live-update "
                                                "notice names the version it is about.")


class AttributeValue(BaseModel):
    attribute: str
    display_name: str
    value: object | None


class ConversationDetail(ConversationSummary):
    closed_at: datetime | None = None
    linked_from: str | None = Field(default=None, description="The closed conversation this one continues.")
    attributes: list[AttributeValue] = Field(default_factory=list,
                                             description="The attributes the portal's admin chose to show.")
    reopen: Literal["reopen", "new_conversation", "window_passed", "disabled"] | None = Field(
        default=None, description="For a closed conversation, what asking to reopen it does now under the portal's "
                                  "policy: `reopen`, `new_conversation` (a follow-up linked to it), or nothing "
                                  "(`window_passed`, `disabled`). Null while it is open.")
    messages: list[MessageView]


class ConversationPage(Reply):
    conversations: list[ConversationSummary]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")


class ConversationReply(Reply):
    conversation: ConversationDetail
    replayed: bool = Field(default=False, description="True when an `Idempotency-Key` answered a retry.")


class PostedMessage(Reply):
    conversation_id: str
    message: MessageView
    reopened: bool = Field(default=False, description="The message reopened the conversation.")
    replayed: bool = False


# -- customer side -----------------------------------------------------------------------------

class ListConversations(Request):
    viewer: Viewer
    status: Status | None = None
    channel: Channel | None = None
    q: str | None = Field(default=None, max_length=200)
    cursor: str | None = Field(default=None, max_length=200)
    limit: int = Field(default=25, ge=1, le=100)


class GetConversation(Request):
    viewer: Viewer
    conversation_id: str = Field(max_length=26)


CustomerChannel = Literal["portal", "chat"]
CUSTOMER_CHANNEL_DOC = ("Where the customer writes from, chosen by the gateway's route (never by the customer): "
                        "`portal` (the portal's pages and API) or `chat` (the chat widget).")


class StartConversation(Request):
    viewer: Viewer
    subject: str = Field(max_length=2000)
    body: str = Field(max_length=1_000_000)
    attachments: list[AttachmentRef] = Field(default_factory=list, max_length=100)
    idempotency_key: str | None = Field(default=None, max_length=200)
    channel: CustomerChannel = Field(default="portal", description=CUSTOMER_CHANNEL_DOC)


class PostMessage(Request):
    viewer: Viewer
    conversation_id: str = Field(max_length=26)
    body: str = Field(max_length=1_000_000)
    attachments: list[AttachmentRef] = Field(default_factory=list, max_length=100)
    reopen: bool = Field(default=False, description="Reopen a closed conversation with this message.")
    idempotency_key: str | None = Field(default=None, max_length=200)
    channel: CustomerChannel = Field(default="portal", description=CUSTOMER_CHANNEL_DOC)


class ReopenConversation(Request):
    viewer: Viewer
    conversation_id: str = Field(max_length=26)
    idempotency_key: str | None = Field(default=None, max_length=200)


class GetAttachment(Request):
    """Who asks (a customer `viewer`, or a staff `actor`) and which file."""

    viewer: Viewer | None = None
    actor: Actor | None = None
    attachment_id: str = Field(max_length=26)


class AttachmentFile(Reply):
    id: str
    filename: str
    content_type: str
    size: int
    sha256: str


class GetMessageLimits(Request):
    """The message limits of a portal, or of the portal a conversation belongs to."""

    org_id: str
    portal: str | None = Field(default=None, max_length=100)
    conversation_id: str | None = Field(default=None, max_length=26)


class MessageLimits(Reply):
    max_body_chars: int
    max_files: int
    max_file_bytes: int


# -- agent side ---------------------------------------------------------------------------------

class AgentInbox(Request):
    actor: Actor
    status: Status | None = None
    channel: Channel | None = None
    portal: str | None = Field(default=None, max_length=100)
    assignee: str | None = Field(default=None, max_length=40, description="A staff id, `me` or `none`.")
    customer_id: str | None = Field(default=None, max_length=26, description="Only this customer's conversations.")
    q: str | None = Field(default=None, max_length=200, description="Words in the subject, the customer's e-mail, "
                                                                   "or any message or internal note.")
    cursor: str | None = Field(default=None, max_length=200)
    limit: int = Field(default=25, ge=1, le=100)


class AgentConversation(BaseModel):
    id: str
    portal: str
    subject: str
    status: Status
    channel: Channel
    reply_channel: Channel = Field(description="Where answers go now (`portal` after a reopen or a portal message).")
    customer_id: str
    customer_email: str | None = None
    assignee_id: str | None
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    linked_from: str | None = None
    attributes: dict[str, object] = Field(default_factory=dict)
    preview: str = Field(default="", description="Start of the last message the customer can see.")
    unread: bool = Field(default=False, description="In the inbox: the customer wrote since the caller (this staff "
                                                    "member or API key) last opened the conversation.")
    awaiting_answer: bool = Field(default=False, description="In the inbox: the customer wrote after the last answer.")


class AgentInboxPage(Reply):
    conversations: list[AgentConversation]
    next_cursor: str | None


class AgentConversationDetail(Reply):
    conversation: AgentConversation
    participants: list[dict[str, str]] = Field(description="User ids and their role (reporter, participant).")
    messages: list[MessageView] = Field(description="Everything, internal notes included.")
    detail_attributes: list["DetailAttribute"] = Field(
        default_factory=list, description="The attributes the portal's admin chose to show customers, with their "
                                          "names; the `custom.<name>` ones are set with the attributes action.")


class AgentGetConversation(Request):
    actor: Actor
    conversation_id: str = Field(max_length=26)


class AgentPostMessage(Request):
    actor: Actor
    conversation_id: str = Field(max_length=26)
    body: str = Field(max_length=1_000_000)
    internal: bool = Field(default=False, description="An internal note: never shown, sent or e-mailed to customers.")
    attachments: list[AttachmentRef] = Field(default_factory=list, max_length=100)
    reopen: bool = False
    idempotency_key: str | None = Field(default=None, max_length=200)


class AgentAction(Request):
    """close, reopen."""

    actor: Actor
    conversation_id: str = Field(max_length=26)


class AgentChangeSubject(AgentAction):
    subject: str = Field(max_length=2000)


class AgentAssign(AgentAction):
    assignee_id: str | None = Field(default=None, max_length=26, description="Staff user id; null unassigns.")


class AgentSetAttributes(AgentAction):
    values: dict[str, str | int | float | bool | None] = Field(
        description="Custom attributes to set (null removes one).", max_length=50)


class AgentRedact(AgentAction):
    message_id: str = Field(max_length=26)


class AgentConversationReply(Reply):
    conversation: AgentConversation


class ListAssignees(Request):
    actor: Actor


class Assignee(BaseModel):
    id: str
    email: str
    display_name: str | None = None


class AssigneeList(Reply):
    staff: list[Assignee] = Field(description="The org's staff accounts a conversation may be assigned to, by e-mail.")


# -- admin --------------------------------------------------------------------------------------

class DetailAttribute(BaseModel):
    attribute: str = Field(min_length=1, max_length=60, pattern=r"^(assignee|updated_at|closed_at|reference|"
                                                                 r"custom\.[A-Za-z0-9_]{1,50})$",
                           description="`assignee`, `updated_at`, `closed_at`, `reference` or `custom.<name>`.",
                           examples=["custom.order_number"])
    display_name: str = Field(min_length=1, max_length=100, examples=["Order number"])


class ConversationSettings(BaseModel):
    """A portal's conversation settings. Omitted fields are left as they are."""

    model_config = {"extra": "forbid"}

    my_conversations_enabled: bool | None = Field(default=None, description="Customers see My Conversations.")
    reopen_enabled: bool | None = Field(default=None, description="Customers may reopen closed conversations.")
    reopen_policy: ReopenPolicy | None = Field(
        default=None, description="`always`, `within_days` (of closing) or `new_conversation` (a new linked one).")
    reopen_within_days: int | None = Field(default=None, ge=1, le=3650)
    detail_attributes: list[DetailAttribute] | None = Field(default=None, max_length=20)
    max_body_chars: int | None = Field(default=None, ge=1, le=100_000)
    max_files: int | None = Field(default=None, ge=0, le=20)
    max_file_bytes: int | None = Field(default=None, ge=1, le=25 * 1024 * 1024)


class ConversationSettingsView(Reply):
    portal: str
    my_conversations_enabled: bool
    reopen_enabled: bool
    reopen_policy: ReopenPolicy
    reopen_within_days: int
    detail_attributes: list[DetailAttribute]
    max_body_chars: int
    max_files: int
    max_file_bytes: int


class GetConversationSettings(Request):
    actor: Actor
    portal: str = Field(min_length=1, max_length=100)


class UpdateConversationSettings(Request):
    actor: Actor
    portal: str = Field(min_length=1, max_length=100)
    settings: ConversationSettings


# -- inbound channels -----------------------------------------------------------------------------

class InboundCustomer(BaseModel):
    email: str = Field(max_length=320, description="The customer's e-mail: one account per e-mail in the org.")
    display_name: str | None = Field(default=None, max_length=200)


class InboundPayload(BaseModel):
    """Body of `POST /api/v1/channels/{channel}/inbound`, signed by the org's channel secret."""

    model_config = {"extra": "forbid"}

    portal: str = Field(min_length=1, max_length=100, examples=["demo"])
    external_message_id: str = Field(min_length=1, max_length=200,
                                     description="The provider's message id: a message is accepted once.")
    thread_id: str | None = Field(default=None, max_length=200,
                                  description="The provider's thread: later messages land in the same conversation.")
    customer: InboundCustomer
    subject: str | None = Field(default=None, max_length=2000)
    body: str = Field(max_length=1_000_000)


class InboundMessage(Request):
    channel: Channel
    org_id: str = Field(max_length=26)
    timestamp: str = Field(max_length=20)
    signature: str = Field(max_length=200)
    raw_body: str = Field(max_length=2_000_000, description="The body exactly as received (the signature covers it).")


class InboundAccepted(Reply):
    conversation_id: str
    message_id: str
    created_conversation: bool
    duplicate: bool = Field(description="This external_message_id was accepted before; nothing new was stored.")


class RotateChannelSecret(Request):
    actor: Actor


class ChannelSecret(Reply):
    org_id: str
    secret: str = Field(description="Shown this once. Sign inbound requests with it (HMAC-SHA256).")


class GetPortalFeatures(Request):
    """Public: what the web portal shows of a portal's conversation settings."""

    org_id: str
    portal: str = Field(min_length=1, max_length=100)


class PortalFeatures(Reply):
    my_conversations_enabled: bool
    reopen_enabled: bool
    reopen_policy: ReopenPolicy = Field(default=ReopenPolicy.always,
                                        description="What writing to a closed conversation does, when reopening is on.")
    reopen_within_days: int = Field(default=0, description="For `within_days`: days after closing it may reopen.")
    max_body_chars: int
    max_files: int
    max_file_bytes: int
    file_types: dict[str, str] = Field(default_factory=dict, description="Allowed file name extensions and "
                                       "their content types (checked by content, not by name alone).")
