"""conversations' pure rules, without NATS or a database: what a customer's message to a closed
conversation does under each reopen policy on every channel, the portal's message limits, cursors."""

from datetime import UTC, datetime, timedelta

import pytest

from contracts import roles
from contracts.errors import ErrorCode, ServiceError
from contracts.events import AttachmentRef
from services.conversations import domain

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
CHANNELS = ["portal", "email", "chat", "whatsapp", "sms"]

# (enabled, policy, closed days ago) -> what a message on any channel does
OUTCOMES = [
    (True, "always", 400, "reopen"),
    (True, "within_days", 6, "reopen"),
    (True, "within_days", 8, "new_conversation"),
    (True, "new_conversation", 0, "new_conversation"),
    (False, "always", 0, "new_conversation"),
    (False, "within_days", 1, "new_conversation"),
]


@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize("enabled,policy,days,outcome", OUTCOMES)
def test_a_message_to_a_closed_conversation_follows_the_policy_on_every_channel(channel, enabled, policy, days,
                                                                                outcome):
    # The rule takes no channel: one answer for all of them is the point.
    assert domain.message_to_closed(enabled=enabled, policy=policy, within_days=7,
                                    closed_at=NOW - timedelta(days=days), now=NOW) == outcome


def test_asking_the_portal_to_reopen_explains_a_refusal_instead_of_starting_a_new_conversation():
    with pytest.raises(ServiceError) as off:
        domain.customer_reopen(enabled=False, policy="always", within_days=7, closed_at=NOW, now=NOW)
    assert off.value.code == ErrorCode.reopen_disabled
    with pytest.raises(ServiceError) as late:
        domain.customer_reopen(enabled=True, policy="within_days", within_days=7,
                               closed_at=NOW - timedelta(days=8), now=NOW)
    assert late.value.code == ErrorCode.reopen_window_passed and "7 days" in late.value.message
    assert domain.customer_reopen(enabled=True, policy="new_conversation", within_days=7, closed_at=NOW,
                                  now=NOW) == "new_conversation"
    assert domain.customer_reopen(enabled=True, policy="within_days", within_days=7,
                                  closed_at=NOW - timedelta(days=6), now=NOW) == "reopen"


@pytest.mark.parametrize("body,code", [
    ("", ErrorCode.message_empty), (" \n\t", ErrorCode.message_empty), ("x" * 101, ErrorCode.message_too_long),
    ("bell\x07", ErrorCode.invalid_request), ("nul\x00", ErrorCode.invalid_request),
])
def test_a_body_outside_the_limits_is_refused_with_its_reason(body, code):
    with pytest.raises(ServiceError) as refused:
        domain.check_body(body, 100)
    assert refused.value.code == code


def test_the_limit_counts_characters_not_bytes():
    assert domain.check_body("ü" * 100, 100) == "ü" * 100
    assert domain.check_body("line\r\n\ttabbed", 100) == "line\r\n\ttabbed"


def _ref(name: str, size: int, content_type: str = "image/png") -> AttachmentRef:
    return AttachmentRef(attachment_id="A" * 26, filename=name, content_type=content_type, size=size, sha256="0" * 64)


@pytest.mark.parametrize("refs,code", [
    ([_ref(f"{i}.png", 10) for i in range(7)], ErrorCode.too_many_attachments),
    ([_ref("big.png", 3 * 1024 * 1024 + 1)], ErrorCode.attachment_too_large),
    ([_ref("empty.png", 0)], ErrorCode.attachment_empty),
    ([_ref("run.exe", 10, "application/x-msdownload")], ErrorCode.attachment_type_not_allowed),
])
def test_files_outside_the_portals_limits_are_refused(refs, code):
    with pytest.raises(ServiceError) as refused:
        domain.check_attachments(refs, max_files=6, max_file_bytes=3 * 1024 * 1024, allowed_types={"image/png"})
    assert refused.value.code == code


def test_six_files_of_three_megabytes_pass():
    domain.check_attachments([_ref(f"{i}.png", 3 * 1024 * 1024) for i in range(6)], max_files=6,
                             max_file_bytes=3 * 1024 * 1024, allowed_types={"image/png"})


def test_a_cursor_round_trips_and_a_forged_one_is_refused():
    cursor = domain.encode_cursor(NOW, "01JD8ZQ4S5K4W3YB8W1T0VQ9E3")
    assert domain.decode_cursor(cursor) == (NOW, "01JD8ZQ4S5K4W3YB8W1T0VQ9E3")
    for forged in ("", "not-base64!", "W10", "bnVsbA"):
        with pytest.raises(ServiceError) as refused:
            domain.decode_cursor(forged)
        assert refused.value.code == ErrorCode.invalid_request


# -- roles -------------------------------------------------------------------------------------------

ROLE_TABLE = {  # role: (administer, work conversations, edit articles, read internal articles)
    "admin": (True, True, True, True), "org.admin": (True, True, True, True),
    "agent": (False, True, False, True), "org.agent": (False, True, False, True),
    "content_manager": (False, False, True, True), "org.read": (False, False, False, False),
    "customer": (False, False, False, False), "": (False, False, False, False), None: (False, False, False, False),
}


@pytest.mark.parametrize("role", ROLE_TABLE)
def test_each_roles_permissions_are_the_table_in_the_readme(role):
    assert (roles.can_administer(role), roles.can_work_conversations(role), roles.can_edit_articles(role),
            roles.can_read_internal_articles(role)) == ROLE_TABLE[role]


def test_an_org_read_key_may_not_work_the_agent_inbox():
    from contracts.rpc import Actor
    from services.conversations import store

    with pytest.raises(ServiceError) as refused:
        store.agent_author(Actor(org_id="O" * 26, role="org.read", principal="key:" + "K" * 26))
    assert refused.value.code == ErrorCode.forbidden
