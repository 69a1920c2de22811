"""Uploads (``/v1/files``): what their bytes turned out to be, and lists of them."""

from __future__ import annotations

from typing import Literal

from vidgate.types.base import _Response

FileKind = Literal["image", "video", "audio"]


class UploadedFile(_Response):
    """An upload (``POST /v1/files``): what its bytes turned out to be, and until when it is kept."""

    id: str
    bytes: int
    mime_type: str
    kind: FileKind
    sha256: str
    created_at: int
    expires_at: int
    width: int | None = None
    height: int | None = None
    duration_seconds: float | None = None
    purpose: str | None = None
    object: str = "file"


class FileList(_Response):
    data: list[UploadedFile]
    has_more: bool
    object: str = "list"
    first_id: str | None = None
    last_id: str | None = None


class FileDeleted(_Response):
    id: str
    object: str = "file"
    deleted: bool = True
