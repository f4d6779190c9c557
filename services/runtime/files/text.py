"""Text: XML without DTDs, entities or pages, and CSV tables; other text is not allowed."""

import csv
import io
import re

import puremagic
from defusedxml import ElementTree as SafeET

from services.runtime.files.common import malformed, not_allowed

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
        raise not_allowed(name, "a web page or SVG image")
    try:
        root = SafeET.fromstring(data, forbid_dtd=True)
    except Exception as exc:                 # ParseError, DTDForbidden, EntitiesForbidden...
        raise malformed(name, "is not well-formed XML, or has a DTD or entities") from exc
    if root.tag.rsplit("}", 1)[-1].lower() in _PAGE_ROOTS or any(
            isinstance(element.tag, str) and element.tag.startswith(_PAGE_NAMESPACES) for element in root.iter()):
        raise not_allowed(name, "XML carrying HTML or SVG")
    return "xml"


CSV_DELIMITERS = ",;\t|"
CSV_SAMPLE_ROWS = 200


def _check_csv(name: str, text: str) -> str:
    """CSV is a table: rows of at least two fields split by one delimiter (`CSV_DELIMITERS`), the same
    number of fields in at least 80% of the first rows. Other plain text (logs, notes) is not CSV
    and is refused as a type that is not allowed, whatever its name."""
    if not text.strip():
        raise malformed(name, "is a CSV file with no lines")
    try:
        for _ in csv.reader(io.StringIO(text, newline="")):
            pass
    except csv.Error as exc:
        raise malformed(name, "is not a valid CSV file") from exc
    rows = [line for line in text.splitlines()[:CSV_SAMPLE_ROWS * 2] if line.strip()][:CSV_SAMPLE_ROWS]
    try:
        dialect = csv.Sniffer().sniff("\n".join(rows[:50]), delimiters=CSV_DELIMITERS)
        widths = [len(row) for row in csv.reader(io.StringIO("\n".join(rows)), dialect)]
    except csv.Error:
        widths = []
    common = max(set(widths), key=widths.count) if widths else 0
    if common < 2 or widths.count(common) < 0.8 * len(widths):
        raise not_allowed(name, "plain text that is not a CSV table")
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


def check_text(name: str, data: bytes) -> str:
    if data.startswith(_TEXT_NOT_ALLOWED):
        raise not_allowed(name, "a script or document, not data")
    sample = data[:8192]
    # Over 3% control bytes is binary, not ours at all; text with a stray NUL or Latin-1 byte is
    # a broken CSV/XML instead.
    if len(sample) - len(sample.translate(None, _CONTROL_BYTES)) > len(sample) * 0.03:
        raise not_allowed(name, _guess(data))
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise malformed(name, "is not valid UTF-8 text") from exc
    if "\x00" in text:
        raise malformed(name, "contains NUL bytes")
    return _check_xml(name, data, text) if text.lstrip().startswith("<") else _check_csv(name, text)
