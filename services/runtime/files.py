"""Attachment content checks. The type comes from the bytes, never the name, and a file must be
one of nine allowed types and nothing else besides: truncated, corrupt and polyglot files,
Office macros, active PDF content, XML entities and decompression bombs are all refused."""

import csv
import hashlib
import io
import re
import unicodedata
import warnings
import zipfile
import zlib
from dataclasses import dataclass
from typing import BinaryIO

import olefile
import puremagic
from defusedxml import ElementTree as SafeET
from PIL import Image, ImageFile

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


def _malformed(name: str, what: str) -> FileRefused:
    return FileRefused(ErrorCode.attachment_malformed, f'"{name}" {what}.')


def _not_allowed(name: str, what: str) -> FileRefused:
    return FileRefused(ErrorCode.attachment_type_not_allowed, f'"{name}" is not an allowed file type ({what}).')


# File names

_FORBIDDEN_CHARS = set('<>:"/\\|?*')
_OLD_EXTENSION = re.compile(r"\.([A-Za-z0-9]{1,8})$")


def _clean(name: str) -> str:
    name = unicodedata.normalize("NFC", re.split(r"[/\\]", name)[-1])   # base name only
    # Cc: control characters; Cf: format characters such as U+202E, which makes "gpj.exe" display
    # as "exe.jpg"; Cs: lone surrogates, which cannot even be encoded.
    name = "".join(" " if c.isspace() else c for c in name
                   if c not in _FORBIDDEN_CHARS and (c.isspace() or unicodedata.category(c) not in ("Cc", "Cf", "Cs")))
    return " ".join(name.split())


def sanitise_filename(name: str, extension: str) -> str:
    extension = extension.lower().lstrip(".")
    stem = _clean(name)
    old = _OLD_EXTENSION.search(stem)
    if old and not old[1].isdigit():          # "photo.jpg" loses ".jpg"; "report v1.5" keeps ".5"
        stem = stem[:old.start()]
    stem = stem.strip(". ")                   # leading dots hide files; Windows drops trailing ones
    stem = stem[:120 - len(extension) - 1 if extension else 120].rstrip(". ") or "attachment"
    return f"{stem}.{extension}" if extension else stem


# Images: Pillow must decode all of it, and nothing may follow the format's end marker, which is
# where a PNG+ZIP or JPEG+script polyglot keeps its second file.

def _decode_image(name: str, data: bytes, fmt: str) -> None:
    if ImageFile.LOAD_TRUNCATED_IMAGES:      # a global Pillow switch; when on, truncation goes unseen
        raise CheckerMisconfigured("PIL.ImageFile.LOAD_TRUNCATED_IMAGES must be False to check attachments")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=[fmt]) as image:
                pixels = image.width * image.height
                if pixels <= MAX_PIXELS:      # the header gives a bomb away: don't decode it
                    image.load()
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        pixels = MAX_PIXELS + 1
    except Exception as exc:                 # any parser failure on untrusted bytes: a broken file
        raise _malformed(name, f"is not a valid {fmt} image (truncated or corrupt)") from exc
    if pixels > MAX_PIXELS:
        raise _malformed(name, "has too many pixels (decompression bomb)")


def _refuse_trailing(name: str, data: bytes, end: int, what: str) -> None:
    if not 0 <= end <= len(data):
        raise _malformed(name, f"is a truncated or corrupt {what}")
    if end < len(data):
        raise _malformed(name, f"has data after the end of the {what}")


def _check_png(name: str, data: bytes) -> str:
    _decode_image(name, data, "PNG")
    view, pos, kind = memoryview(data), 8, b""
    while kind != b"IEND":                   # walk the chunks to IEND, checking every CRC
        length = int.from_bytes(view[pos:pos + 4])
        kind, end = bytes(view[pos + 4:pos + 8]), pos + 12 + length
        if end > len(data) or zlib.crc32(view[pos + 4:end - 4]) != int.from_bytes(view[end - 4:end]):
            raise _malformed(name, "is a truncated or corrupt PNG image")
        pos = end
    _refuse_trailing(name, data, pos, "PNG image")
    return "png"


def _skip_gif_blocks(data: bytes, pos: int) -> int:
    while pos < len(data) and data[pos]:
        pos += data[pos] + 1
    return pos + 1


def _gif_colour_table(flags: int) -> int:
    return 3 << ((flags & 7) + 1) if flags & 0x80 else 0


def _check_gif(name: str, data: bytes) -> str:
    _decode_image(name, data, "GIF")
    pos = 13 + _gif_colour_table(data[10])   # header, logical screen, global colour table
    while pos < len(data) and data[pos] != 0x3B:           # 0x3B: the trailer
        if data[pos] == 0x21:                              # extension: introducer, label, blocks
            pos = _skip_gif_blocks(data, pos + 2)
        elif data[pos] == 0x2C and pos + 10 < len(data):   # image: descriptor, table, LZW size, blocks
            pos = _skip_gif_blocks(data, pos + 10 + _gif_colour_table(data[pos + 9]) + 1)
        else:
            break
    _refuse_trailing(name, data, pos + 1 if pos < len(data) and data[pos] == 0x3B else -1, "GIF image")
    return "gif"


def _check_jpeg(name: str, data: bytes) -> str:
    _decode_image(name, data, "JPEG")
    # Walk the segments to EOI (a search for FFD9 would stop inside an EXIF thumbnail). After SOS,
    # entropy-coded data runs to the next FF that is not stuffing (FF00) or a restart marker.
    pos, end = 2, -1
    while pos + 1 < len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        if marker == 0xD9:
            end = pos + 2
            break
        if marker == 0xFF or 0xD0 <= marker <= 0xD7 or marker == 0x01:   # fill byte, standalone
            pos += 1 if marker == 0xFF else 2
            continue
        pos += 2 + int.from_bytes(data[pos + 2:pos + 4])
        if marker == 0xDA:
            pos = data.find(b"\xff", pos)
            while 0 <= pos < len(data) - 1 and (data[pos + 1] == 0 or 0xD0 <= data[pos + 1] <= 0xD7):
                pos = data.find(b"\xff", pos + 2)
            if pos < 0:
                break
    _refuse_trailing(name, data, end, "JPEG image")
    return "jpg"


# PDF

_DELIM = rb"\s()<>\[\]{}/%"
_PDF_HEADER = re.compile(rb"%PDF-(1\.[0-7]|2\.0)")
_PDF_STARTXREF = re.compile(rb"startxref\s+(\d+)\s*$")
# Actions that run code or carry files. Names may spell letters as #xx, so those are decoded too.
_PDF_ACTIVE = re.compile(rb"/(?:JavaScript|JS|Launch|EmbeddedFiles?|RichMedia|XFA)(?![^" + _DELIM + rb"])")
_PDF_ESCAPED_NAME = re.compile(rb"/[^" + _DELIM + rb"]*#[0-9A-Fa-f]{2}[^" + _DELIM + rb"]*")
_PDF_OBJECT_STREAM = re.compile(rb"/Type\s*/ObjStm")
_PDF_FLATE = re.compile(rb"/Filter\s*(?:/FlateDecode|\[\s*/FlateDecode\s*\])(?![^" + _DELIM + rb"])")


def _pdf_is_active(data: bytes) -> bool:
    if _PDF_ACTIVE.search(data):
        return True
    return any(_PDF_ACTIVE.fullmatch(re.sub(rb"#([0-9A-Fa-f]{2})", lambda h: bytes([int(h[1], 16)]), found[0]))
               for found in _PDF_ESCAPED_NAME.finditer(data))


def _pdf_object_streams(name: str, data: bytes):
    """Object streams (PDF 1.5+) compress dictionaries, hiding actions from a byte search:
    inflate each, within a budget, so they can be searched too."""
    budget = MAX_PDF_INFLATED
    for found in _PDF_OBJECT_STREAM.finditer(data):
        obj, start = data.rfind(b"obj", 0, found.start()), data.find(b"stream", found.end())
        stop = data.find(b"endstream", start)
        if min(obj, start, stop) < 0 or not _PDF_FLATE.search(data, obj, start):
            raise _malformed(name, "is a PDF whose object streams cannot be checked")
        try:
            inflated = zlib.decompressobj().decompress(data[start + 6:stop].lstrip(b"\r\n"), budget + 1)
        except zlib.error as exc:
            raise _malformed(name, "is a corrupt or encrypted PDF") from exc
        budget -= len(inflated)
        if budget < 0:
            raise _malformed(name, "is a PDF that inflates too far (decompression bomb)")
        yield inflated


def _check_pdf(name: str, data: bytes) -> str:
    if not _PDF_HEADER.match(data):
        raise _malformed(name, "has an unknown PDF version")
    eof = data.rfind(b"%%EOF", max(0, len(data) - 1024))
    if eof < 0:
        raise _malformed(name, "is a truncated PDF (no %%EOF at the end)")
    if data[eof + 5:].strip(b" \t\r\n\f\x00"):
        raise _malformed(name, "has data after the end of the PDF")
    startxref = _PDF_STARTXREF.search(data, max(0, eof - 1024), eof)
    if not startxref or int(startxref[1]) >= eof:
        raise _malformed(name, "is a corrupt PDF (no valid startxref)")
    if b"PK\x05\x06" in data:                # a ZIP end record: a PDF/ZIP polyglot
        raise _malformed(name, "is a PDF with a ZIP archive inside")
    if _pdf_is_active(data) or any(map(_pdf_is_active, _pdf_object_streams(name, data))):
        raise _malformed(name, "is a PDF with JavaScript, launch actions or embedded files")
    return "pdf"


# Office

def _check_ooxml(name: str, data: bytes) -> str:
    eocd = data.rfind(b"PK\x05\x06", max(0, len(data) - 22 - 65535))
    end = eocd + 22 + int.from_bytes(data[eocd + 20:eocd + 22], "little") if eocd >= 0 else -1
    _refuse_trailing(name, data, end, "ZIP-based document")   # nothing after the end record's comment
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except Exception as exc:
        raise _malformed(name, "is a corrupt ZIP-based document") from exc
    with archive:
        entries = archive.infolist()
        names = {entry.filename.lower() for entry in entries}   # OPC part names ignore case
        if not entries or len(entries) > MAX_ZIP_ENTRIES or len(names) != len(entries):
            raise _malformed(name, "is a corrupt ZIP-based document (no, duplicate or too many entries)")
        if min(entry.header_offset for entry in entries) != 0:   # zipfile skips anything in front
            raise _malformed(name, "has data before the ZIP-based document")
        if sum(entry.file_size for entry in entries) > MAX_UNZIPPED or any(
                entry.file_size > 1024 * 1024 and entry.file_size > MAX_RATIO * max(entry.compress_size, 1)
                for entry in entries):
            raise _malformed(name, "unpacks too far (decompression bomb)")
        is_docx, is_xlsx = "word/document.xml" in names, "xl/workbook.xml" in names
        if not is_docx and not is_xlsx:
            raise _not_allowed(name, "a ZIP archive, not a Word or Excel document")
        if (is_docx and is_xlsx) or "[content_types].xml" not in names:
            raise _malformed(name, "is a corrupt Office document (missing or conflicting parts)")
        if any(n.rsplit("/", 1)[-1].startswith(("vbaproject", "vbadata")) for n in names):
            raise _malformed(name, "is an Office document with macros")
        try:                                  # reads every entry; the sizes were capped above
            broken = archive.testzip()
        except Exception as exc:              # encrypted, unknown compression, corrupt deflate...
            raise _malformed(name, "is a corrupt Office document") from exc
    if broken is not None:
        raise _malformed(name, "is a corrupt Office document")
    return "docx" if is_docx else "xlsx"


_MACRO_STORAGES = {"macros", "_vba_project_cur", "vba"}


def _check_doc(name: str, data: bytes) -> str:
    try:                                     # DEFECT_INCORRECT: truncation and bad structure raise
        ole = olefile.OleFileIO(io.BytesIO(data), raise_defects=olefile.DEFECT_INCORRECT)
    except Exception as exc:
        raise _malformed(name, "is a corrupt or truncated OLE document") from exc
    with ole:
        if ole.get_type("WordDocument") != olefile.STGTY_STREAM:
            raise _not_allowed(name, "an OLE file that is not a Word document")
        if any(part.lower() in _MACRO_STORAGES for path in ole.listdir(storages=True) for part in path):
            raise _malformed(name, "is a Word document with macros")
        try:
            word = ole.openstream("WordDocument").read()
        except Exception as exc:
            raise _malformed(name, "is a corrupt or truncated Word document") from exc
    if word[:2] not in (b"\xec\xa5", b"\xdc\xa5"):   # the FIB's wIdent: Word 97+, Word 6/95
        raise _malformed(name, "is a corrupt Word document")
    return "doc"


# Text: XML when it starts with "<", CSV otherwise

_PAGE_ROOTS = {"html", "svg"}               # browsers render these, scripts and all
_PAGE_NAMESPACES = ("{http://www.w3.org/1999/xhtml}", "{http://www.w3.org/2000/svg}")
_TEXT_NOT_ALLOWED = (b"#!", b"{\\rtf", b"%!")   # scripts, RTF, PostScript: text, but not data
_XML_SKIPPABLE = re.compile(r"\s*(?:<\?.*?\?>|<!--.*?-->)?", re.S)
_XML_FIRST_NAME = re.compile(r"\s*<(?:!DOCTYPE\s+)?([^\s/>\[!]+)", re.I)
_CONTROL_BYTES = bytes(b for b in range(32) if b not in b"\t\n\r\f\v") + b"\x7f"


def _xml_root_hint(text: str) -> str | None:
    """The DOCTYPE name or first element name, lower-case, without prefix: enough to spot HTML
    and SVG that are not well-formed XML."""
    pos = 0
    while (skipped := _XML_SKIPPABLE.match(text, pos).end()) != pos:   # declarations, PIs, comments
        pos = skipped
    found = _XML_FIRST_NAME.match(text, pos)
    return found[1].rsplit(":", 1)[-1].lower() if found else None


def _check_xml(name: str, data: bytes, text: str) -> str:
    if _xml_root_hint(text) in _PAGE_ROOTS or "<?xml-stylesheet" in text:
        raise _not_allowed(name, "a web page or SVG image")
    try:
        root = SafeET.fromstring(data, forbid_dtd=True)
    except Exception as exc:                 # ParseError, DTDForbidden, EntitiesForbidden...
        raise _malformed(name, "is not well-formed XML, or has a DTD or entities") from exc
    if root.tag.rsplit("}", 1)[-1].lower() in _PAGE_ROOTS or any(
            isinstance(element.tag, str) and element.tag.startswith(_PAGE_NAMESPACES) for element in root.iter()):
        raise _not_allowed(name, "XML carrying HTML or SVG")
    return "xml"


CSV_DELIMITERS = ",;\t|"
CSV_SAMPLE_ROWS = 200


def _check_csv(name: str, text: str) -> str:
    """CSV is a table: rows of at least two fields split by one delimiter (`CSV_DELIMITERS`), the same
    number of fields in at least 80% of the first rows. Other plain text (logs, notes) is not CSV
    and is refused as a type that is not allowed, whatever its name."""
    if not text.strip():
        raise _malformed(name, "is a CSV file with no lines")
    try:
        for _ in csv.reader(io.StringIO(text, newline="")):
            pass
    except csv.Error as exc:
        raise _malformed(name, "is not a valid CSV file") from exc
    rows = [line for line in text.splitlines()[:CSV_SAMPLE_ROWS * 2] if line.strip()][:CSV_SAMPLE_ROWS]
    try:
        dialect = csv.Sniffer().sniff("\n".join(rows[:50]), delimiters=CSV_DELIMITERS)
        widths = [len(row) for row in csv.reader(io.StringIO("\n".join(rows)), dialect)]
    except csv.Error:
        widths = []
    common = max(set(widths), key=widths.count) if widths else 0
    if common < 2 or widths.count(common) < 0.8 * len(widths):
        raise _not_allowed(name, "plain text that is not a CSV table")
    return "csv"


def _guess(data: bytes) -> str:
    """A name for what a refused binary file is, for the message only; puremagic's first guess,
    except for executables, where its first guess is an obscure format sharing the signature."""
    if data.startswith((b"MZ", b"\x7fELF", b"\xcf\xfa\xed\xfe", b"\xca\xfe\xba\xbe")):
        return "an executable program"
    try:
        return puremagic.magic_string(data[:4096])[0].name
    except Exception:
        return "unrecognised binary data"


def _check_text(name: str, data: bytes) -> str:
    if data.startswith(_TEXT_NOT_ALLOWED):
        raise _not_allowed(name, "a script or document, not data")
    sample = data[:8192]
    # Over 3% control bytes is binary, not ours at all; text with a stray NUL or Latin-1 byte is
    # a broken CSV/XML instead.
    if len(sample) - len(sample.translate(None, _CONTROL_BYTES)) > len(sample) * 0.03:
        raise _not_allowed(name, _guess(data))
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _malformed(name, "is not valid UTF-8 text") from exc
    if "\x00" in text:
        raise _malformed(name, "contains NUL bytes")
    return _check_xml(name, data, text) if text.lstrip().startswith("<") else _check_csv(name, text)


# Dispatch

_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", _check_png),
    (b"GIF87a", _check_gif),
    (b"GIF89a", _check_gif),
    (b"\xff\xd8\xff", _check_jpeg),
    (b"%PDF-", _check_pdf),
    (b"PK\x03\x04", _check_ooxml),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", _check_doc),
)


def _refuse_prepended(name: str, data: bytes) -> None:
    """Readers look for a PDF header anywhere in the first 1024 bytes and find a ZIP by its end
    record, so data in front of either still opens: a polyglot."""
    if b"%PDF-" in data[:1024]:
        raise _malformed(name, "has data before the PDF header")
    if data.rfind(b"PK\x05\x06", max(0, len(data) - 22 - 65535)) >= 0:
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                names = {n.lower() for n in archive.namelist()}
        except Exception:
            return
        if names & {"word/document.xml", "xl/workbook.xml"}:
            raise _malformed(name, "has data before the Office document")


def check_file(filename: str, data: bytes) -> CheckedFile:
    name = _clean(filename).lstrip(". ")[:120] or "attachment"   # for messages
    if not data:
        raise FileRefused(ErrorCode.attachment_empty, f'"{name}" is empty.')
    check = next((check for signature, check in _SIGNATURES if data.startswith(signature)), None)
    try:
        if check is None:
            _refuse_prepended(name, data)
            check = _check_text
        extension = check(name, data)
    except (FileRefused, CheckerMisconfigured):
        raise
    except Exception as exc:                 # a parser failure no check above foresaw: still the file's fault
        raise _malformed(name, "could not be read (corrupt or of an unexpected structure)") from exc
    claimed = _OLD_EXTENSION.search(name)
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
