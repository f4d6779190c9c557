"""services.runtime.files: the attachment checker, against the corpus in tests/fixtures/files.py."""

import hashlib
import io
import unicodedata

import pytest
from PIL import ImageFile

from contracts.errors import ErrorCode
from services.runtime.files import (
    ALLOWED_TYPES,
    CheckedFile,
    FileRefused,
    check_file,
    check_files,
    sanitise_filename,
)
from tests.fixtures.files import REFUSED, VALID, sample

THREE_MB = 3 * 1024 * 1024
PADDABLE = ["png", "pdf", "csv", "gif", "jpg", "xml", "docx", "xlsx", "doc"]


def test_the_nine_allowed_types():
    assert sorted(ALLOWED_TYPES) == sorted(["xlsx", "csv", "doc", "docx", "xml", "pdf", "gif", "jpg", "png"])
    assert sorted(ext for ext in ALLOWED_TYPES) == sorted(name.rsplit(".", 1)[1] for name, _, _ in VALID)


@pytest.mark.parametrize(("filename", "data", "content_type"), VALID, ids=[case[0] for case in VALID])
def test_valid_samples_are_accepted(filename, data, content_type):
    extension = filename.rsplit(".", 1)[1]
    assert check_file(filename, data) == CheckedFile(
        filename=filename, content_type=content_type, extension=extension, size=len(data),
        sha256=hashlib.sha256(data).hexdigest())


@pytest.mark.parametrize(("filename", "data", "code"), REFUSED, ids=[case[0] for case in REFUSED])
def test_refused_samples_are_refused_with_the_right_code(filename, data, code):
    with pytest.raises(FileRefused) as refused:
        check_file(filename, data)
    assert refused.value.code == ErrorCode(code), refused.value.message
    message = refused.value.message
    assert filename in message and len(message) < 200
    # the message never quotes the file: no 12-byte run of the content appears in it
    head = data[:4096]
    assert not any(head[i:i + 12] in message.encode() for i in range(max(0, len(head) - 11)))


def test_the_refused_corpus_covers_every_code_and_enough_cases():
    assert len(REFUSED) >= 25
    assert {code for _, _, code in REFUSED} == {"attachment_empty", "attachment_type_not_allowed",
                                                 "attachment_malformed"}
    assert len({name for name, _, _ in REFUSED}) == len(REFUSED)


@pytest.mark.parametrize(("filename", "extension", "expected"), [
    ("photo.jpg", "png", "photo.png"),
    ("report.docx", "pdf", "report.pdf"),
    ("figures.xlsx", "csv", "figures.csv"),
    ("scan", "jpg", "scan.jpg"),
    ("photo.jpeg", "jpg", "photo.jpeg"),       # jpeg and jpg are the same type
    ("PHOTO.JPG", "jpg", "PHOTO.jpg"),
])
def test_the_extension_follows_the_content(filename, extension, expected):
    checked = check_file(filename, sample(extension))
    assert (checked.filename, checked.extension, checked.content_type) == (
        expected, extension, ALLOWED_TYPES[extension])


def test_a_png_named_jpg_comes_back_as_png():
    checked = check_file("photo.jpg", sample("png"))
    assert checked.filename == "photo.png"
    assert checked.content_type == "image/png"
    assert checked.extension == "png"


@pytest.mark.parametrize(("name", "extension", "expected"), [
    ("../../etc/passwd.pdf", "pdf", "passwd.pdf"),
    ("..\\..\\windows\\system32\\config.pdf", "pdf", "config.pdf"),
    ("C:\\Users\\Bob\\Desktop\\invoice.pdf", "pdf", "invoice.pdf"),
    ("/var/tmp/report.csv", "csv", "report.csv"),
    ("in\x00vo\x1bice\r\n\x7f.pdf", "pdf", "invoice.pdf"),
    ("holiday\u202egnp.exe", "png", "holidaygnp.png"),     # right-to-left override
    ('a<b>c:d"e|f?g*h.csv', "csv", "abcdefgh.csv"),
    ("  lots   of\t\tspace  .csv", "csv", "lots of space.csv"),
    ("...hidden.xml", "xml", "hidden.xml"),
    (".pdf", "pdf", "attachment.pdf"),
    ("....", "pdf", "attachment.pdf"),
    ("..", "doc", "attachment.doc"),
    (". . .", "gif", "attachment.gif"),
    ("", "png", "attachment.png"),
    ("../", "png", "attachment.png"),
    ("report v1.5", "pdf", "report v1.5.pdf"),
    ("photo.JPG", "png", "photo.png"),
    ("archive.tar.exe", "docx", "archive.tar.docx"),
])
def test_sanitise_filename(name, extension, expected):
    assert sanitise_filename(name, extension) == expected


def test_sanitise_filename_normalises_to_nfc():
    result = sanitise_filename("Cafe\u0301 menu.csv", "csv")
    assert result == "Caf\u00e9 menu.csv" and unicodedata.is_normalized("NFC", result)


@pytest.mark.parametrize("name", ["x" * 300 + ".pdf", "y" * 300, "z" * 117 + " . . . .pdf", "é" * 300 + ".pdf"])
def test_long_names_are_capped_at_120_characters_keeping_the_extension(name):
    result = sanitise_filename(name, "pdf")
    assert len(result) <= 120 and result.endswith(".pdf") and not result.endswith("..pdf")
    assert len(result) >= 115


@pytest.mark.parametrize("extension", PADDABLE)
def test_samples_pad_to_exactly_3_mb_and_are_still_accepted(extension):
    data = sample(extension, THREE_MB)
    assert len(data) == THREE_MB
    checked = check_file(f"big.{extension}", data)
    assert (checked.extension, checked.size) == (extension, THREE_MB)


@pytest.mark.parametrize("extension", ["png", "pdf", "csv"])
@pytest.mark.parametrize("size", [4096, 10_000, 123_457, 1_000_001])
def test_png_pdf_and_csv_pad_to_any_size(extension, size):
    data = sample(extension, size)
    assert len(data) == size
    assert check_file(f"sized.{extension}", data).content_type == ALLOWED_TYPES[extension]


def test_doc_sizes_must_be_whole_sectors():
    with pytest.raises(ValueError):
        sample("doc", 10_000)


def test_images_are_not_checked_while_pillow_accepts_truncated_files(monkeypatch):
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    with pytest.raises(RuntimeError):
        check_file("photo.png", sample("png"))


def test_a_parser_failure_no_check_foresaw_is_a_malformed_file(monkeypatch):
    import olefile

    def broken(*_: object, **__: object) -> object:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(olefile.OleFileIO, "listdir", broken)
    with pytest.raises(FileRefused) as refused:
        check_file("report.doc", sample("doc"))
    assert refused.value.code is ErrorCode.attachment_malformed


def test_files_on_disk_over_the_limit_are_refused_without_being_read(tmp_path):
    class Unreadable(io.BytesIO):
        def read(self, *_: object) -> bytes:
            raise AssertionError("a file over the limit was read")

    big = Unreadable(b"%PDF-1.4" + b"0" * 2000)
    with pytest.raises(FileRefused) as refused:
        check_files([("big.pdf", big)], max_files=1, max_file_bytes=1000)
    assert refused.value.code is ErrorCode.attachment_too_large


def test_files_on_disk_are_checked_and_come_back_rewound(tmp_path):
    data = sample("png")
    with (tmp_path / "shot.png").open("w+b") as spooled:
        spooled.write(data)
        [(info, content)] = check_files([("shot.png", spooled)], max_files=1, max_file_bytes=len(data))
        assert (info.extension, info.size, info.sha256) == ("png", len(data), hashlib.sha256(data).hexdigest())
        assert content is spooled and spooled.read() == data
