"""What every file check shares: the allowed types, the limits of what is unpacked, the refusal and the checked file."""

from dataclasses import dataclass

from contracts.errors import ErrorCode

ALLOWED_TYPES: dict[str, str] = {
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "csv": "text/csv",
    "doc": "application/msword",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xml": "application/xml",
    "pdf": "application/pdf",
    "gif": "image/gif",
    "jpg": "image/jpeg",
    "png": "image/png",
}

MAX_PIXELS = 40_000_000              # far beyond any screenshot or phone photo
MAX_UNZIPPED = 100 * 1024 * 1024     # total uncompressed size of an Office file
MAX_RATIO = 100                      # per ZIP entry over 1 MB; real Office XML compresses ~5-30x
MAX_ZIP_ENTRIES = 10_000
MAX_PDF_INFLATED = 100 * 1024 * 1024  # object streams we inflate to look inside a PDF


class FileRefused(Exception):
    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class CheckerMisconfigured(RuntimeError):
    """The process is set up so that the checks cannot be trusted: a server fault, never the file's."""


@dataclass(frozen=True)
class CheckedFile:
    filename: str
    content_type: str
    extension: str
    size: int
    sha256: str


def malformed(name: str, what: str) -> FileRefused:
    return FileRefused(ErrorCode.attachment_malformed, f'"{name}" {what}.')


def not_allowed(name: str, what: str) -> FileRefused:
    return FileRefused(ErrorCode.attachment_type_not_allowed, f'"{name}" is not an allowed file type ({what}).')

def refuse_trailing(name: str, data: bytes, end: int, what: str) -> None:
    if not 0 <= end <= len(data):
        raise malformed(name, f"is a truncated or corrupt {what}")
    if end < len(data):
        raise malformed(name, f"has data after the end of the {what}")
