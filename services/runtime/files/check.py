"""Checking a file: its type from its first bytes, then that format's own checks."""

import hashlib
import io
import zipfile
from typing import BinaryIO

from contracts.errors import ErrorCode
from services.runtime.files.common import ALLOWED_TYPES, CheckedFile, CheckerMisconfigured, FileRefused, malformed
from services.runtime.files.images import check_gif, check_jpeg, check_png
from services.runtime.files.names import OLD_EXTENSION, clean_name, sanitise_filename
from services.runtime.files.office import check_doc, check_ooxml
from services.runtime.files.pdf import check_pdf
from services.runtime.files.text import check_text

# Dispatch

_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", check_png),
    (b"GIF87a", check_gif),
    (b"GIF89a", check_gif),
    (b"\xff\xd8\xff", check_jpeg),
    (b"%PDF-", check_pdf),
    (b"PK\x03\x04", check_ooxml),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", check_doc),
)


def _refuse_prepended(name: str, data: bytes) -> None:
    """Readers look for a PDF header anywhere in the first 1024 bytes and find a ZIP by its end
    record, so data in front of either still opens: a polyglot."""
    if b"%PDF-" in data[:1024]:
        raise malformed(name, "has data before the PDF header")
    if data.rfind(b"PK\x05\x06", max(0, len(data) - 22 - 65535)) >= 0:
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                names = {n.lower() for n in archive.namelist()}
        except Exception:
            return
        if names & {"word/document.xml", "xl/workbook.xml"}:
            raise malformed(name, "has data before the Office document")


def check_file(filename: str, data: bytes) -> CheckedFile:
    name = clean_name(filename).lstrip(". ")[:120] or "attachment"   # for messages
    if not data:
        raise FileRefused(ErrorCode.attachment_empty, f'"{name}" is empty.')
    check = next((check for signature, check in _SIGNATURES if data.startswith(signature)), None)
    try:
        if check is None:
            _refuse_prepended(name, data)
            check = check_text
        extension = check(name, data)
    except (FileRefused, CheckerMisconfigured):
        raise
    except Exception as exc:                 # a parser failure no check above foresaw: still the file's fault
        raise malformed(name, "could not be read (corrupt or of an unexpected structure)") from exc
    claimed = OLD_EXTENSION.search(name)
    spelling = "jpeg" if extension == "jpg" and claimed and claimed[1].lower() == "jpeg" else extension
    return CheckedFile(filename=sanitise_filename(filename, spelling), content_type=ALLOWED_TYPES[extension],
                       extension=extension, size=len(data), sha256=hashlib.sha256(data).hexdigest())


def check_files(files: list[tuple[str, bytes | BinaryIO]], *, max_files: int,
                max_file_bytes: int) -> list[tuple[CheckedFile, bytes | BinaryIO]]:
    """A message's files (name, content), every one checked before any is stored; the first refusal raises
    `FileRefused`. The content is bytes, or a binary file (such as an upload spooled to disk): a file's size is
    read from the file, a file over `max_file_bytes` is refused without being read, and one file at a time is
    held in memory to check it; each file comes back rewound to its start, ready to be stored."""
    if len(files) > max_files:
        raise FileRefused(ErrorCode.too_many_attachments,
                          f"{len(files)} files attached; at most {max_files} are allowed.")
    checked: list[tuple[CheckedFile, bytes | BinaryIO]] = []
    for name, content in files:
        size = len(content) if isinstance(content, bytes) else content.seek(0, io.SEEK_END)
        if size > max_file_bytes:
            raise FileRefused(ErrorCode.attachment_too_large,
                              f"{name[:100]} is {size:,} bytes; at most {max_file_bytes:,} are allowed.")
        if isinstance(content, bytes):
            checked.append((check_file(name, content), content))
        else:
            content.seek(0)
            info = check_file(name, content.read())
            content.seek(0)
            checked.append((info, content))
    return checked
