"""PNG, GIF and JPEG."""

import io
import warnings
import zlib

from PIL import Image, ImageFile

from services.runtime.files.common import MAX_PIXELS, CheckerMisconfigured, malformed, refuse_trailing

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
        raise malformed(name, f"is not a valid {fmt} image (truncated or corrupt)") from exc
    if pixels > MAX_PIXELS:
        raise malformed(name, "has too many pixels (decompression bomb)")



def check_png(name: str, data: bytes) -> str:
    _decode_image(name, data, "PNG")
    view, pos, kind = memoryview(data), 8, b""
    while kind != b"IEND":                   # walk the chunks to IEND, checking every CRC
        length = int.from_bytes(view[pos:pos + 4])
        kind, end = bytes(view[pos + 4:pos + 8]), pos + 12 + length
        if end > len(data) or zlib.crc32(view[pos + 4:end - 4]) != int.from_bytes(view[end - 4:end]):
            raise malformed(name, "is a truncated or corrupt PNG image")
        pos = end
    refuse_trailing(name, data, pos, "PNG image")
    return "png"


def _skip_gif_blocks(data: bytes, pos: int) -> int:
    while pos < len(data) and data[pos]:
        pos += data[pos] + 1
    return pos + 1


def _gif_colour_table(flags: int) -> int:
    return 3 << ((flags & 7) + 1) if flags & 0x80 else 0


def check_gif(name: str, data: bytes) -> str:
    _decode_image(name, data, "GIF")
    pos = 13 + _gif_colour_table(data[10])   # header, logical screen, global colour table
    while pos < len(data) and data[pos] != 0x3B:           # 0x3B: the trailer
        if data[pos] == 0x21:                              # extension: introducer, label, blocks
            pos = _skip_gif_blocks(data, pos + 2)
        elif data[pos] == 0x2C and pos + 10 < len(data):   # image: descriptor, table, LZW size, blocks
            pos = _skip_gif_blocks(data, pos + 10 + _gif_colour_table(data[pos + 9]) + 1)
        else:
            break
    refuse_trailing(name, data, pos + 1 if pos < len(data) and data[pos] == 0x3B else -1, "GIF image")
    return "gif"


def check_jpeg(name: str, data: bytes) -> str:
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
    refuse_trailing(name, data, end, "JPEG image")
    return "jpg"
