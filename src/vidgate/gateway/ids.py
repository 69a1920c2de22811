"""The one id function and the one clock."""

from __future__ import annotations

import secrets
import time

from ulid import ULID


def new_id(prefix: str) -> str:
    """A time-sortable id (``vid_01J…``); keyset pagination orders by it."""
    return f"{prefix}_{str(ULID()).lower()}"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def now_s() -> int:
    return int(time.time())


def token(nbytes: int = 24) -> str:
    return secrets.token_urlsafe(nbytes)
