"""Attachment content checks. The type comes from the bytes, never the name, and a file must be
one of nine allowed types and nothing else besides: truncated, corrupt and polyglot files,
Office macros, active PDF content, XML entities and decompression bombs are all refused.

A package by format: `names` (file names), `images` (PNG, GIF, JPEG), `pdf`, `office` (DOCX,
XLSX, DOC), `text` (XML, CSV); `check` dispatches by the first bytes. The one entry point is
`check_file(filename, data) -> CheckedFile`, which raises `FileRefused` (`attachment_empty`,
`attachment_type_not_allowed`, `attachment_malformed`); `check_files` checks a message's files
against the count and size limits its caller passes (the portal's, from conversations).
"""

from services.runtime.files.check import check_file, check_files
from services.runtime.files.common import (
    ALLOWED_TYPES,
    MAX_PDF_INFLATED,
    MAX_PIXELS,
    MAX_RATIO,
    MAX_UNZIPPED,
    MAX_ZIP_ENTRIES,
    CheckedFile,
    CheckerMisconfigured,
    FileRefused,
)
from services.runtime.files.names import sanitise_filename

__all__ = ["ALLOWED_TYPES", "MAX_PDF_INFLATED", "MAX_PIXELS", "MAX_RATIO", "MAX_UNZIPPED", "MAX_ZIP_ENTRIES",
           "CheckedFile", "CheckerMisconfigured", "FileRefused", "check_file", "check_files", "sanitise_filename"]
