"""``GET /v1/videos/{id}?wait=N``: hold a poll until the job changes, N seconds pass or the client leaves.

The wait is driven by the event bus (``events/waiters.py``), never by reading the database on a
timer: a waiter re-reads the job only when woken. Reading the ``wait`` parameter is pure and kept
apart from the holding.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Awaitable, Callable
from typing import TypeVar
from urllib.parse import parse_qsl

from starlette.types import Receive

from vidgate.errors import ValidationError

MAX_WAIT_SECONDS = 30.0
_NUMBER = re.compile(r"\+?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")
_MESSAGE = f"wait must be a number of seconds above 0 and at most {MAX_WAIT_SECONDS:g}"

T = TypeVar("T")


class ClientGone(Exception):
    """The client closed the connection while its poll was held: there is no one to answer."""


def parse_wait(raw: str) -> float:
    """``wait`` as seconds: an integer or decimal, 0 < N ≤ 30; anything else is a validation error."""
    if len(raw) > 32 or not _NUMBER.match(raw):
        raise ValidationError(_MESSAGE, param="wait")
    value = float(raw)
    if not (math.isfinite(value) and 0 < value <= MAX_WAIT_SECONDS):
        raise ValidationError(_MESSAGE, param="wait")
    return value


def wait_param(query_string: bytes) -> float | None:
    """The ``wait`` of a raw query string (its last, when repeated); None when there is none."""
    if b"wait" not in query_string:
        return None
    raw = None
    for name, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        if name == "wait":
            raw = value
    return None if raw is None else parse_wait(raw)


async def _disconnected(receive: Receive) -> None:
    """Returns once the client has gone. A GET's one body message comes first; the next waits."""
    quiet = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        quiet += 1
        if quiet > 2:  # a server that never reports a disconnect: the wait's own deadline ends it
            await asyncio.Event().wait()


async def hold(
    woken: asyncio.Event,
    seconds: float,
    receive: Receive | None,
    reread: Callable[[], Awaitable[tuple[bool, T]]],
    draining: Callable[[], bool],
) -> T | None:
    """Wait on ``woken`` for up to ``seconds``, calling ``reread`` on each wake-up until it says the
    job changed (``(True, state)``); the last state read, or None when nothing was read.

    Raises ``ClientGone`` when the client disconnects first.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    gone = asyncio.ensure_future(_disconnected(receive)) if receive is not None else None
    state: T | None = None
    try:
        while not draining():
            left = deadline - loop.time()
            if left <= 0:
                break
            wake = asyncio.ensure_future(woken.wait())
            watched = {wake} if gone is None else {wake, gone}
            done, _ = await asyncio.wait(watched, timeout=left, return_when=asyncio.FIRST_COMPLETED)
            if gone is not None and gone in done:
                wake.cancel()
                raise ClientGone
            if wake not in done:
                wake.cancel()
                break
            woken.clear()
            changed, state = await reread()
            if changed:
                break
    finally:
        if gone is not None:
            gone.cancel()
    return state
