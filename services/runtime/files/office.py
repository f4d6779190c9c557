"""Office: DOCX and XLSX (ZIP packages) and DOC (OLE), without macros or decompression bombs."""

import io
import zipfile

import olefile

from services.runtime.files.common import (
    MAX_RATIO,
    MAX_UNZIPPED,
    MAX_ZIP_ENTRIES,
    malformed,
    not_allowed,
    refuse_trailing,
)

# Office

def check_ooxml(name: str, data: bytes) -> str:
    eocd = data.rfind(b"PK\x05\x06", max(0, len(data) - 22 - 65535))
    end = eocd + 22 + int.from_bytes(data[eocd + 20:eocd + 22], "little") if eocd >= 0 else -1
    refuse_trailing(name, data, end, "ZIP-based document")   # nothing after the end record's comment
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except Exception as exc:
        raise malformed(name, "is a corrupt ZIP-based document") from exc
    with archive:
        entries = archive.infolist()
        names = {entry.filename.lower() for entry in entries}   # OPC part names ignore case
        if not entries or len(entries) > MAX_ZIP_ENTRIES or len(names) != len(entries):
            raise malformed(name, "is a corrupt ZIP-based document (no, duplicate or too many entries)")
        if min(entry.header_offset for entry in entries) != 0:   # zipfile skips anything in front
            raise malformed(name, "has data before the ZIP-based document")
        if sum(entry.file_size for entry in entries) > MAX_UNZIPPED or any(
                entry.file_size > 1024 * 1024 and entry.file_size > MAX_RATIO * max(entry.compress_size, 1)
                for entry in entries):
            raise malformed(name, "unpacks too far (decompression bomb)")
        is_docx, is_xlsx = "word/document.xml" in names, "xl/workbook.xml" in names
        if not is_docx and not is_xlsx:
            raise not_allowed(name, "a ZIP archive, not a Word or Excel document")
        if (is_docx and is_xlsx) or "[content_types].xml" not in names:
            raise malformed(name, "is a corrupt Office document (missing or conflicting parts)")
        if any(n.rsplit("/", 1)[-1].startswith(("vbaproject", "vbadata")) for n in names):
            raise malformed(name, "is an Office document with macros")
        try:                                  # reads every entry; the sizes were capped above
            broken = archive.testzip()
        except Exception as exc:              # encrypted, unknown compression, corrupt deflate...
            raise malformed(name, "is a corrupt Office document") from exc
    if broken is not None:
        raise malformed(name, "is a corrupt Office document")
    return "docx" if is_docx else "xlsx"


_MACRO_STORAGES = {"macros", "_vba_project_cur", "vba"}


def check_doc(name: str, data: bytes) -> str:
    try:                                     # DEFECT_INCORRECT: truncation and bad structure raise
        ole = olefile.OleFileIO(io.BytesIO(data), raise_defects=olefile.DEFECT_INCORRECT)
    except Exception as exc:
        raise malformed(name, "is a corrupt or truncated OLE document") from exc
    with ole:
        if ole.get_type("WordDocument") != olefile.STGTY_STREAM:
            raise not_allowed(name, "an OLE file that is not a Word document")
        if any(part.lower() in _MACRO_STORAGES for path in ole.listdir(storages=True) for part in path):
            raise malformed(name, "is a Word document with macros")
        try:
            word = ole.openstream("WordDocument").read()
        except Exception as exc:
            raise malformed(name, "is a corrupt or truncated Word document") from exc
    if word[:2] not in (b"\xec\xa5", b"\xdc\xa5"):   # the FIB's wIdent: Word 97+, Word 6/95
        raise malformed(name, "is a corrupt Word document")
    return "doc"
