"""API keys as the admin routes show them."""

from __future__ import annotations

from msgspec import UNSET, UnsetType

from vidgate.types.base import _Response


class APIKey(_Response):
    id: str
    name: str
    created_at: int
    key: str | UnsetType = UNSET
    prefix: str | UnsetType = UNSET
    revoked_at: int | None = None
    object: str = "api_key"
