"""The one error envelope every failed request answers with."""

from __future__ import annotations

from typing import Any

from msgspec import UNSET, UnsetType

from vidgate.types.base import _Response


class ErrorBody(_Response):
    type: str
    code: str
    message: str
    param: str | None = None
    request_id: str | None = None
    status: int | UnsetType = UNSET
    details: dict[str, Any] | UnsetType = UNSET


class ErrorEnvelope(_Response):
    error: ErrorBody
