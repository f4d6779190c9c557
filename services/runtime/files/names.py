"""File names: what a stored file is called, whatever the sender called it."""

import re
import unicodedata

# File names

_FORBIDDEN_CHARS = set('<>:"/\\|?*')
OLD_EXTENSION = re.compile(r"\.([A-Za-z0-9]{1,8})$")


def clean_name(name: str) -> str:
    name = unicodedata.normalize("NFC", re.split(r"[/\\]", name)[-1])   # base name only
    # Cc: control characters; Cf: format characters such as U+202E, which makes "gpj.exe" display
    # as "exe.jpg"; Cs: lone surrogates, which cannot even be encoded.
    name = "".join(" " if c.isspace() else c for c in name
                   if c not in _FORBIDDEN_CHARS and (c.isspace() or unicodedata.category(c) not in ("Cc", "Cf", "Cs")))
    return " ".join(name.split())


def sanitise_filename(name: str, extension: str) -> str:
    extension = extension.lower().lstrip(".")
    stem = clean_name(name)
    old = OLD_EXTENSION.search(stem)
    if old and not old[1].isdigit():          # "photo.jpg" loses ".jpg"; "report v1.5" keeps ".5"
        stem = stem[:old.start()]
    stem = stem.strip(". ")                   # leading dots hide files; Windows drops trailing ones
    stem = stem[:120 - len(extension) - 1 if extension else 120].rstrip(". ") or "attachment"
    return f"{stem}.{extension}" if extension else stem
