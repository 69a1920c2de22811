"""An upload's bytes on their way in: a ``multipart/form-data`` body streamed to a temporary file
(never whole in memory), capped, hashed, then found out from its bytes alone.

The body is parsed as it arrives, so an upload over the cap is refused at the first byte past it and
its partial file removed; what a client says a file is (its name, its part's ``Content-Type``) is
ignored: an image is known by its header (``render.imagesize``), a video or audio file by PyAV
opening it and decoding one frame, off the event loop.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import av
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from vidgate.errors import PayloadTooLargeError, UnsupportedMediaTypeError, ValidationError
from vidgate.gateway.ids import token
from vidgate.gateway.render.imagesize import oversize, sniff
from vidgate.gateway.render.probe import ProbeError, probe
from vidgate.types import FileKind

FILE_FIELD = "file"
PURPOSE_FIELD = "purpose"
MAX_PURPOSE = 64
# Room for the part headers and boundaries around the file, and for the small fields beside it.
FORM_OVERHEAD = 64 << 10
SNIFF_BYTES = 64 << 10
# An audio file's type by the name of the demuxer PyAV opened it with.
AUDIO_TYPES = {
    "mp3": "audio/mpeg",
    "wav": "audio/wav",
    "ogg": "audio/ogg",
    "flac": "audio/flac",
    "aac": "audio/aac",
    "mov,mp4,m4a,3gp,3g2,mj2": "audio/mp4",
}


@dataclass(frozen=True, slots=True)
class Received:
    """The ``file`` part, written to ``path``, and the form's ``purpose``."""

    path: Path
    bytes: int
    sha256: str
    purpose: str | None


@dataclass(frozen=True, slots=True)
class Probed:
    """What the bytes are: their kind and type, and their picture size and length where they have one."""

    kind: FileKind
    mime_type: str
    width: int | None = None
    height: int | None = None
    duration_seconds: float | None = None


def boundary_of(content_type: str) -> bytes:
    """The multipart boundary of a ``Content-Type`` header; a body of any other type is a 415."""
    ctype, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if ctype != b"multipart/form-data" or not boundary:
        raise UnsupportedMediaTypeError(
            f"send the upload as multipart/form-data with a {FILE_FIELD} field"
            f" (got {content_type or 'no content type'})",
            param="Content-Type",
        )
    return boundary


class _Form:
    """The parser's callbacks: the ``file`` part goes to disk as it comes, ``purpose`` is kept (bounded),
    any other field is read past."""

    def __init__(self, path: Path, max_bytes: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.fh: IO[bytes] | None = None
        self.digest = hashlib.sha256()
        self.size = 0
        self.files = 0
        self.purpose: bytearray | None = None
        self._field = ""
        self._header = b""
        self._value = b""
        self._headers: dict[bytes, bytes] = {}
        self._name: str | None = None

    def callbacks(self) -> dict[str, object]:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": self._header_field,
            "on_header_value": self._header_value,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
        }

    def _part_begin(self) -> None:
        self._headers = {}
        self._name = None

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._header.lower()] = self._value
        self._header, self._value = b"", b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        self._name = options.get(b"name", b"").decode("utf-8", "replace")
        if self._name == FILE_FIELD:
            self.files += 1
            if self.files > 1:
                raise ValidationError(f"send one {FILE_FIELD} per upload", param=FILE_FIELD)
            self.fh = self.path.open("wb")
        elif self._name == PURPOSE_FIELD:
            self.purpose = bytearray()

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        if self._name == FILE_FIELD and self.fh is not None:
            self.size += len(chunk)
            if self.size > self.max_bytes:
                raise PayloadTooLargeError(f"the file is larger than {self.max_bytes} bytes", param=FILE_FIELD)
            self.digest.update(chunk)
            self.fh.write(chunk)
        elif self._name == PURPOSE_FIELD and self.purpose is not None:
            self.purpose += chunk
            if len(self.purpose) > MAX_PURPOSE:
                raise ValidationError(f"purpose is at most {MAX_PURPOSE} characters", param=PURPOSE_FIELD)

    def close(self) -> None:
        if self.fh is not None:
            self.fh.close()


async def receive(
    chunks: AsyncIterator[bytes], content_type: str, tmpdir: Path, max_bytes: int, declared: int | None = None
) -> Received:
    """Stream a multipart body's ``file`` to a new file in ``tmpdir``; the caller removes it when done.
    Over ``max_bytes`` (declared or sent) is a 413, and nothing is left behind."""
    boundary = boundary_of(content_type)
    if declared is not None and declared > max_bytes + FORM_OVERHEAD:
        raise PayloadTooLargeError(f"the file is larger than {max_bytes} bytes", param=FILE_FIELD)
    tmpdir.mkdir(parents=True, exist_ok=True)
    form = _Form(tmpdir / f"up-{token(8)}.part", max_bytes)
    parser = MultipartParser(boundary, form.callbacks())  # type: ignore[arg-type]
    total = 0
    try:
        try:
            async for chunk in chunks:
                total += len(chunk)
                if total > max_bytes + FORM_OVERHEAD:
                    raise PayloadTooLargeError(f"the file is larger than {max_bytes} bytes", param=FILE_FIELD)
                parser.write(chunk)
            parser.finalize()
        except MultipartParseError as exc:
            raise ValidationError(f"the multipart body does not parse ({exc})") from None
        finally:
            form.close()
        if form.files == 0:
            raise ValidationError(f"the form has no {FILE_FIELD} field", param=FILE_FIELD)
        if form.size == 0:
            raise ValidationError(f"the {FILE_FIELD} is empty", param=FILE_FIELD)
        purpose = None
        if form.purpose is not None:
            purpose = form.purpose.decode("utf-8", "replace").strip() or None
            if purpose is not None and "\x00" in purpose:
                raise ValidationError("purpose must not contain NUL characters", param=PURPOSE_FIELD)
    except BaseException:
        form.path.unlink(missing_ok=True)
        raise
    return Received(form.path, form.size, form.digest.hexdigest(), purpose)


def sniff_file(path: Path) -> Probed | None:
    """What the file's bytes are, or None when they are no image, video or audio we can read.
    Blocking (PyAV decodes a frame): run it off the event loop."""
    with path.open("rb") as fh:
        head = fh.read(SNIFF_BYTES)
    image = sniff(head)
    if image is not None:
        if (why := oversize(image)) is not None:
            raise UnsupportedMediaTypeError(why, param=FILE_FIELD)
        return Probed("image", f"image/{image.format}", image.width, image.height)
    try:
        with av.open(str(path)) as container:
            has_video = bool(container.streams.video)
            audio = container.streams.audio[0] if container.streams.audio else None
            if not has_video:
                if audio is None:
                    return None
                mime = AUDIO_TYPES.get(container.format.name)
                if mime is None or next(container.decode(audio), None) is None:
                    return None
                duration = None if container.duration is None else round(container.duration / av.time_base, 3)
                return Probed("audio", mime, duration_seconds=duration)
    except av.error.FFmpegError:
        return None
    try:
        info = probe(path)
    except ProbeError:
        return None
    return Probed("video", info.mime_type, info.width, info.height, round(info.duration_seconds, 3))
