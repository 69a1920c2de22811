"""An image's format and pixel size read from its header alone, so a picture is refused before decoding.

A 640 KB PNG can declare 15000x15000 pixels: decoding it takes most of a gigabyte. Every
input image is measured here first (at create for inline data, in the worker after a fetch, and
again before decoding); only PNG, JPEG, WebP and GIF are recognised, as they are the only types
the gateway accepts. Every walk is bounded, so a hostile header costs microseconds.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_SIDE = 8192
MAX_PIXELS = 40_000_000
_MAX_SEGMENTS = 4096  # JPEG markers or WebP chunks read before giving up on finding the size
_JPEG_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})


@dataclass(frozen=True)
class ImageInfo:
    format: str  # png, jpeg, webp or gif
    width: int
    height: int


def sniff(data: bytes) -> ImageInfo | None:
    """The format and size ``data`` declares, or None when it is no PNG, JPEG, WebP or GIF header."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return _png(data)
    if data.startswith(b"\xff\xd8"):
        return _jpeg(data)
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return _webp(data)
    if data.startswith((b"GIF87a", b"GIF89a")) and len(data) >= 10:
        return _sized("gif", _u16le(data, 6), _u16le(data, 8))
    return None


def oversize(info: ImageInfo) -> str | None:
    """Why an image of this size is refused, or None when it may be decoded."""
    if info.width > MAX_SIDE or info.height > MAX_SIDE or info.width * info.height > MAX_PIXELS:
        return (
            f"the image is {info.width}x{info.height} pixels; images may be at most {MAX_SIDE} pixels "
            f"a side and {MAX_PIXELS:,} pixels in all"
        )
    return None


def _sized(fmt: str, width: int, height: int) -> ImageInfo | None:
    return ImageInfo(fmt, width, height) if width > 0 and height > 0 else None


def _u16le(data: bytes, at: int) -> int:
    return int.from_bytes(data[at : at + 2], "little")


def _u24le(data: bytes, at: int) -> int:
    return int.from_bytes(data[at : at + 3], "little")


def _png(data: bytes) -> ImageInfo | None:
    if len(data) < 24 or data[12:16] != b"IHDR":
        return None
    return _sized("png", int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big"))


def _jpeg(data: bytes) -> ImageInfo | None:
    """The first start-of-frame marker's size; segments before it are skipped by their lengths."""
    i, n = 2, len(data)
    for _ in range(_MAX_SEGMENTS):
        if i + 4 > n or data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # markers without a length
            i += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image or start of scan before any frame header
            return None
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        if length < 2:
            return None
        if marker in _JPEG_SOF:
            if i + 9 > n:
                return None
            height = int.from_bytes(data[i + 5 : i + 7], "big")
            return _sized("jpeg", int.from_bytes(data[i + 7 : i + 9], "big"), height)
        i += 2 + length
    return None


def _webp(data: bytes) -> ImageInfo | None:
    """The largest of the canvas (VP8X), every bitstream (VP8, VP8L) and every animation frame (ANMF)."""
    width = height = 0
    ranges = [(12, min(len(data), 8 + int.from_bytes(data[4:8], "little")))]
    for _ in range(_MAX_SEGMENTS):
        if not ranges:
            break
        at, end = ranges.pop()
        if at + 8 > end:
            continue
        fourcc, size = data[at : at + 4], int.from_bytes(data[at + 4 : at + 8], "little")
        body = at + 8
        ranges.append((body + size + (size & 1), end))
        w = h = 0
        if fourcc == b"VP8X" and body + 10 <= end:
            w, h = _u24le(data, body + 4) + 1, _u24le(data, body + 7) + 1
        elif fourcc == b"VP8 " and body + 10 <= end and data[body + 3 : body + 6] == b"\x9d\x01\x2a":
            w, h = _u16le(data, body + 6) & 0x3FFF, _u16le(data, body + 8) & 0x3FFF
        elif fourcc == b"VP8L" and body + 5 <= end and data[body] == 0x2F:
            bits = int.from_bytes(data[body + 1 : body + 5], "little")
            w, h = (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
        elif fourcc == b"ANMF" and body + 16 <= end:
            w, h = _u24le(data, body + 6) + 1, _u24le(data, body + 9) + 1
            ranges.append((body + 16, min(end, body + size)))  # the frame's own bitstream chunks
        width, height = max(width, w), max(height, h)
    return _sized("webp", width, height)
