"""The one id function and the one clock."""

from __future__ import annotations

import itertools
import os
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


class _RequestIds:
    """``req_`` + a random per-process prefix + a counter: unique, and far cheaper than random bytes per request.

    Request ids name a request in logs and errors; they are not secrets, so a counter is enough once
    the prefix keeps processes (including forked server workers) apart.
    """

    def __init__(self) -> None:
        self.reset()
        os.register_at_fork(after_in_child=self.reset)

    def reset(self) -> None:
        self.prefix = f"req_{token(6)}"
        self.counter = itertools.count(1)

    def __call__(self) -> str:
        return f"{self.prefix}{next(self.counter):x}"


request_id = _RequestIds()
