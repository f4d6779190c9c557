"""PDF: well-formed, and without active content (scripts, launches, embedded files)."""

import re
import zlib

from services.runtime.files.common import MAX_PDF_INFLATED, malformed

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
            raise malformed(name, "is a PDF whose object streams cannot be checked")
        try:
            inflated = zlib.decompressobj().decompress(data[start + 6:stop].lstrip(b"\r\n"), budget + 1)
        except zlib.error as exc:
            raise malformed(name, "is a corrupt or encrypted PDF") from exc
        budget -= len(inflated)
        if budget < 0:
            raise malformed(name, "is a PDF that inflates too far (decompression bomb)")
        yield inflated


def check_pdf(name: str, data: bytes) -> str:
    if not _PDF_HEADER.match(data):
        raise malformed(name, "has an unknown PDF version")
    eof = data.rfind(b"%%EOF", max(0, len(data) - 1024))
    if eof < 0:
        raise malformed(name, "is a truncated PDF (no %%EOF at the end)")
    if data[eof + 5:].strip(b" \t\r\n\f\x00"):
        raise malformed(name, "has data after the end of the PDF")
    startxref = _PDF_STARTXREF.search(data, max(0, eof - 1024), eof)
    if not startxref or int(startxref[1]) >= eof:
        raise malformed(name, "is a corrupt PDF (no valid startxref)")
    if b"PK\x05\x06" in data:                # a ZIP end record: a PDF/ZIP polyglot
        raise malformed(name, "is a PDF with a ZIP archive inside")
    if _pdf_is_active(data) or any(map(_pdf_is_active, _pdf_object_streams(name, data))):
        raise malformed(name, "is a PDF with JavaScript, launch actions or embedded files")
    return "pdf"
