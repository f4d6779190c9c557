"""E-mail access codes, read from the mail catcher."""

import re
from email import message_from_bytes, policy
from pathlib import Path


def mailbox(settings) -> list:  # type: ignore[no-untyped-def]
    folder = Path(settings.data_dir) / "mail"
    if not folder.exists():
        return []
    return [message_from_bytes(p.read_bytes(), policy=policy.default) for p in sorted(folder.glob("*.eml"))]


def code_for(settings, email: str) -> str:  # type: ignore[no-untyped-def]
    mails = [m for m in mailbox(settings) if m["To"] == email]
    assert mails, f"no e-mail to {email}"
    return re.search(r"\b(\d{6})\b", mails[-1].get_content()).group(1)  # type: ignore[union-attr]
