"""Every request/reply operation of every service, declared once: its service, name, request and
reply types, and whether it only reads. The service registers its handler from the declaration
(`Service.serve`), the gateway, the services and the CLI call it through it (`RpcClient.call`),
and the AsyncAPI documents are generated from the registered handlers.

    reply = await rpc.call(operations.conversations.agent_close, AgentAction(...))

Subject of each: `rpc.<service>.<name>` (queue group = the service's name).
"""

from dataclasses import dataclass
from typing import Generic, TypeVar

from contracts import conversations as _conversations
from contracts import kb as _kb
from contracts import notifications as _notifications
from contracts import rpc as _rpc
from contracts.subjects import rpc_subject

RequestT = TypeVar("RequestT", bound=_rpc.Request)
ReplyT = TypeVar("ReplyT", bound=_rpc.Reply)


@dataclass(frozen=True, eq=False)
class Operation(Generic[RequestT, ReplyT]):
    """One operation. `read_only`: answered in a read transaction, several at once per replica;
    `concurrent`: several at once per replica (an async handler that waits on I/O)."""

    service: str
    name: str
    request: type[RequestT]
    reply: type[ReplyT]
    read_only: bool = False
    concurrent: bool = False

    @property
    def subject(self) -> str:
        return rpc_subject(self.service, self.name)

    def __repr__(self) -> str:
        return f"<operation {self.subject}>"


OPERATIONS: list[Operation] = []


def _op(service: str, name: str, request: type[RequestT], reply: type[ReplyT], *, read_only: bool = False,
        concurrent: bool = False) -> Operation[RequestT, ReplyT]:
    operation = Operation(service, name, request, reply, read_only=read_only, concurrent=concurrent)
    OPERATIONS.append(operation)
    return operation


class auth:
    """`rpc.auth.<operation>`"""

    ping = _op("auth", "ping", _rpc.Ping, _rpc.Pong)
    start_email_access = _op("auth", "start_email_access", _rpc.StartEmailAccess, _rpc.EmailAccessStarted,
                             concurrent=True)
    verify_email_code = _op("auth", "verify_email_code", _rpc.VerifyEmailCode, _rpc.SessionOpened, concurrent=True)
    sso_login = _op("auth", "sso_login", _rpc.SsoLogin, _rpc.SessionOpened, concurrent=True)
    anonymous_login = _op("auth", "anonymous_login", _rpc.AnonymousLogin, _rpc.SessionOpened)
    begin_custom_sign_on = _op("auth", "begin_custom_sign_on", _rpc.BeginCustomSignOn, _rpc.CustomSignOnRedirect)
    complete_custom_sign_on = _op("auth", "complete_custom_sign_on", _rpc.CompleteCustomSignOn, _rpc.CustomSignOnDone,
                                  concurrent=True)
    staff_login = _op("auth", "staff_login", _rpc.StaffLogin, _rpc.SessionOpened)
    logout = _op("auth", "logout", _rpc.EndSession, _rpc.SessionEnded)
    verify_api_key = _op("auth", "verify_api_key", _rpc.VerifyApiKey, _rpc.ApiKeyIdentity)
    get_portal = _op("auth", "get_portal", _rpc.GetPortal, _rpc.PortalView)
    create_portal = _op("auth", "create_portal", _rpc.CreatePortal, _rpc.PortalView)
    update_portal_settings = _op("auth", "update_portal_settings", _rpc.UpdatePortalSettings, _rpc.PortalView)
    rotate_secret = _op("auth", "rotate_secret", _rpc.RotateSecret, _rpc.NewSecret)
    revoke_secret = _op("auth", "revoke_secret", _rpc.RevokeSecret, _rpc.SecretRevoked)
    kb_settings = _op("auth", "kb_settings", _rpc.KbSettings, _rpc.KbSecret)
    create_api_key = _op("auth", "create_api_key", _rpc.CreateApiKey, _rpc.ApiKeyCreated)
    list_api_keys = _op("auth", "list_api_keys", _rpc.ListApiKeys, _rpc.ApiKeyList)
    revoke_api_key = _op("auth", "revoke_api_key", _rpc.RevokeApiKey, _rpc.ApiKeyView)
    list_staff = _op("auth", "list_staff", _rpc.ListStaff, _rpc.StaffList)
    create_staff = _op("auth", "create_staff", _rpc.CreateStaff, _rpc.StaffCreated)
    update_staff = _op("auth", "update_staff", _rpc.UpdateStaff, _rpc.StaffUpdated)
    ensure_customer = _op("auth", "ensure_customer", _rpc.EnsureCustomer, _rpc.CustomerAccount)
    portal_info = _op("auth", "portal_info", _rpc.GetPortalInfo, _rpc.PortalInfo, concurrent=True)
    list_portals = _op("auth", "list_portals", _rpc.ListPortals, _rpc.PortalList, read_only=True)


class conversations:
    """`rpc.conversations.<operation>`"""

    ping = _op("conversations", "ping", _rpc.Ping, _rpc.Pong)
    message_limits = _op("conversations", "message_limits", _conversations.GetMessageLimits, _conversations.MessageLimits, read_only=True)
    portal_features = _op("conversations", "portal_features", _conversations.GetPortalFeatures, _conversations.PortalFeatures, read_only=True)
    list_conversations = _op("conversations", "list_conversations", _conversations.ListConversations, _conversations.ConversationPage, read_only=True)
    get_conversation = _op("conversations", "get_conversation", _conversations.GetConversation, _conversations.ConversationReply)
    start_conversation = _op("conversations", "start_conversation", _conversations.StartConversation, _conversations.ConversationReply)
    post_message = _op("conversations", "post_message", _conversations.PostMessage, _conversations.PostedMessage)
    reopen_conversation = _op("conversations", "reopen_conversation", _conversations.ReopenConversation, _conversations.ConversationReply)
    attachment_file = _op("conversations", "attachment_file", _conversations.GetAttachment, _conversations.AttachmentFile, read_only=True)
    agent_inbox = _op("conversations", "agent_inbox", _conversations.AgentInbox, _conversations.AgentInboxPage, read_only=True)
    # Not read-only: opening a conversation marks it read for the caller (the inbox's `unread`).
    agent_get_conversation = _op("conversations", "agent_get_conversation", _conversations.AgentGetConversation, _conversations.AgentConversationDetail)
    list_assignees = _op("conversations", "list_assignees", _conversations.ListAssignees, _conversations.AssigneeList, read_only=True)
    agent_post_message = _op("conversations", "agent_post_message", _conversations.AgentPostMessage, _conversations.PostedMessage)
    agent_close = _op("conversations", "agent_close", _conversations.AgentAction, _conversations.AgentConversationReply)
    agent_reopen = _op("conversations", "agent_reopen", _conversations.AgentAction, _conversations.AgentConversationReply)
    agent_change_subject = _op("conversations", "agent_change_subject", _conversations.AgentChangeSubject, _conversations.AgentConversationReply)
    agent_assign = _op("conversations", "agent_assign", _conversations.AgentAssign, _conversations.AgentConversationReply)
    agent_set_attributes = _op("conversations", "agent_set_attributes", _conversations.AgentSetAttributes, _conversations.AgentConversationReply)
    agent_redact = _op("conversations", "agent_redact", _conversations.AgentRedact, _conversations.AgentConversationReply)
    get_settings = _op("conversations", "get_settings", _conversations.GetConversationSettings, _conversations.ConversationSettingsView)
    update_settings = _op("conversations", "update_settings", _conversations.UpdateConversationSettings, _conversations.ConversationSettingsView)
    rotate_channel_secret = _op("conversations", "rotate_channel_secret", _conversations.RotateChannelSecret, _conversations.ChannelSecret)
    inbound_message = _op("conversations", "inbound_message", _conversations.InboundMessage, _conversations.InboundAccepted)


class notifications:
    """`rpc.notifications.<operation>`"""

    ping = _op("notifications", "ping", _rpc.Ping, _rpc.Pong)
    send_email = _op("notifications", "send_email", _rpc.SendEmail, _rpc.EmailSent, concurrent=True)
    list_dev_mail = _op("notifications", "list_dev_mail", _notifications.ListDevMail, _notifications.DevMailList)
    list_notifications = _op("notifications", "list_notifications", _notifications.ListNotifications, _notifications.NotificationList)
    retry_notification = _op("notifications", "retry_notification", _notifications.RetryNotification, _notifications.NotificationRetried)
    set_channel_webhook = _op("notifications", "set_channel_webhook", _notifications.SetChannelWebhook, _notifications.ChannelWebhook)


class kb:
    """`rpc.kb.<operation>`"""

    ping = _op("kb", "ping", _rpc.Ping, _rpc.Pong)
    list_articles = _op("kb", "list_articles", _kb.ListArticles, _kb.ArticlePage, concurrent=True)
    get_article = _op("kb", "get_article", _kb.GetArticle, _kb.ArticleReply, concurrent=True)
    list_categories = _op("kb", "list_categories", _kb.ListCategories, _kb.CategoryList, concurrent=True)
    create_article = _op("kb", "create_article", _kb.CreateArticle, _kb.AdminArticleReply)
    update_article = _op("kb", "update_article", _kb.UpdateArticle, _kb.AdminArticleReply)
    publish_article = _op("kb", "publish_article", _kb.ArticleAction, _kb.AdminArticleReply)
    unpublish_article = _op("kb", "unpublish_article", _kb.ArticleAction, _kb.AdminArticleReply)
    delete_article = _op("kb", "delete_article", _kb.ArticleAction, _kb.Deleted)
    admin_get_article = _op("kb", "admin_get_article", _kb.ArticleAction, _kb.AdminArticleReply)
    admin_list_articles = _op("kb", "admin_list_articles", _kb.AdminListArticles, _kb.AdminArticleList)
    article_revisions = _op("kb", "article_revisions", _kb.ArticleAction, _kb.RevisionList)
    preview_article = _op("kb", "preview_article", _kb.PreviewArticle, _kb.ArticlePreview, concurrent=True)
    get_switches = _op("kb", "get_switches", _kb.GetKbSwitches, _kb.KbSettingsView)
    update_switches = _op("kb", "update_switches", _kb.UpdateKbSwitches, _kb.KbSettingsView)
    get_theme = _op("kb", "get_theme", _kb.ThemeAction, _kb.ThemeReply)
    save_theme_draft = _op("kb", "save_theme_draft", _kb.SaveThemeDraft, _kb.ThemeReply)
    preview_theme = _op("kb", "preview_theme", _kb.ThemeAction, _kb.ThemeState)
    publish_theme = _op("kb", "publish_theme", _kb.ThemeAction, _kb.ThemeReply)
    upgrade_theme = _op("kb", "upgrade_theme", _kb.ThemeAction, _kb.ThemeReply)
    portal_appearance = _op("kb", "portal_appearance", _kb.GetPortalAppearance, _kb.PortalAppearance, concurrent=True)


def by_subject() -> dict[str, Operation]:
    """Every declared operation by its subject."""
    return {operation.subject: operation for operation in OPERATIONS}


def ping(service: str) -> Operation[_rpc.Ping, _rpc.Pong]:
    """The readiness probe every service answers."""
    return {"auth": auth.ping, "conversations": conversations.ping, "notifications": notifications.ping,
            "kb": kb.ping}[service]
