"""Who may do what: each role's permissions, stated once and used by every service.

Roles of staff accounts: `admin`, `agent`, `content_manager`. Roles of API keys: `org.admin`,
`org.agent`, `org.read`. A role that is not in `PERMISSIONS` may do nothing here.

| role | administer | work conversations | edit articles | read internal articles |
| --- | --- | --- | --- | --- |
| `admin`, `org.admin` | yes | yes | yes | yes |
| `agent`, `org.agent` | | yes | | yes |
| `content_manager` | | | yes | yes |
| `org.read` | | | | |

`org.read` keys read what is public (the knowledge base, the Kustomer-compatible settings
endpoint is `org.admin` only); they may not read the agent inbox.
"""

from enum import StrEnum


class Permission(StrEnum):
    administer = "administer"                          # portals, settings, secrets, API keys, staff, operations
    work_conversations = "work_conversations"          # the agent inbox, answers, notes, close, assign, redact
    edit_articles = "edit_articles"                    # knowledge-base articles and themes
    read_internal_articles = "read_internal_articles"  # internal articles, where the portal shows them to staff


_EVERYTHING = frozenset(Permission)

PERMISSIONS: dict[str, frozenset[Permission]] = {
    "admin": _EVERYTHING,
    "org.admin": _EVERYTHING,
    "agent": frozenset({Permission.work_conversations, Permission.read_internal_articles}),
    "org.agent": frozenset({Permission.work_conversations, Permission.read_internal_articles}),
    "content_manager": frozenset({Permission.edit_articles, Permission.read_internal_articles}),
    "org.read": frozenset(),
}


def can(role: str | None, permission: Permission) -> bool:
    """Whether `role` has `permission` (False for an unknown or missing role)."""
    return permission in PERMISSIONS.get(role or "", frozenset())


def can_administer(role: str | None) -> bool:
    return can(role, Permission.administer)


def can_work_conversations(role: str | None) -> bool:
    return can(role, Permission.work_conversations)


def can_edit_articles(role: str | None) -> bool:
    return can(role, Permission.edit_articles)


def can_read_internal_articles(role: str | None) -> bool:
    return can(role, Permission.read_internal_articles)
