"""End this process's streams as soon as it is told to stop, before the server waits for them.

Servers deliver the ASGI lifespan shutdown only after open connections close, and an event stream or
websocket stays open until its job ends, so shutdown would wait for the longest job (granian drops
websockets without a close frame). On SIGTERM or SIGINT this sets the bus draining first: websockets
close with 1001, event streams end, ``/readyz`` answers 503, and clients reconnect elsewhere and
resume with ``Last-Event-ID`` or ``since=``. The server's own handler then runs as before.

A server that handles the signal in its event loop (granian's workers) stops its connections as soon
as its handler runs, which raced the close frames: a websocket then saw the connection drop (1006)
instead of 1001. Its handler is therefore run only once this process's streams have closed, or after
``DRAIN_BOUND_SECONDS`` at most.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from types import FrameType
from typing import Any

log = logging.getLogger("vidgate")

SIGNALS = (signal.SIGTERM, signal.SIGINT)
DRAIN_BOUND_SECONDS = 3.0


def on_stop_signals(drain: Callable[[], None], settled: Callable[[], bool] = lambda: True) -> Callable[[], None]:
    """Call ``drain`` on SIGTERM/SIGINT, then the server's own handler (once ``settled``, for one the
    event loop runs). Returns the undo; does nothing outside the main thread (an app run in-process by a
    test client), where signals cannot be handled."""
    loop = asyncio.get_running_loop()
    in_loop = {sig: h for sig in SIGNALS if (h := _loop_handler(loop, sig)) is not None}
    if not in_loop:
        return _on_python_signals(loop, drain)

    waits: set[asyncio.Task[None]] = set()

    def on_signal(handle: asyncio.Handle) -> None:
        drain()
        task = loop.create_task(_after_settling(settled, handle))
        waits.add(task)
        task.add_done_callback(waits.discard)

    for sig, handle in in_loop.items():
        loop.add_signal_handler(sig, on_signal, handle)

    def undo() -> None:
        for sig, handle in in_loop.items():
            loop.add_signal_handler(sig, handle._callback, *handle._args)  # type: ignore[attr-defined]

    return undo


def _loop_handler(loop: asyncio.AbstractEventLoop, sig: int) -> asyncio.Handle | None:
    """The handler the server gave ``loop`` for ``sig`` (``add_signal_handler``), if any."""
    handlers = getattr(loop, "_signal_handlers", None)  # the unix selector loop's own table
    return handlers.get(sig) if isinstance(handlers, dict) else None


async def _after_settling(settled: Callable[[], bool], handle: asyncio.Handle) -> None:
    deadline = asyncio.get_running_loop().time() + DRAIN_BOUND_SECONDS
    while not settled() and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.02)
    handle._run()  # type: ignore[attr-defined]


def _on_python_signals(loop: asyncio.AbstractEventLoop, drain: Callable[[], None]) -> Callable[[], None]:
    """Call ``drain`` in ``loop`` on SIGTERM/SIGINT, then the Python handler that was there before."""
    previous: dict[int, Any] = {}

    def handler(signum: int, frame: FrameType | None) -> None:
        loop.call_soon_threadsafe(drain)
        before = previous.get(signum)
        if callable(before):
            before(signum, frame)  # the server's own shutdown, or KeyboardInterrupt for SIGINT
        elif before == signal.SIG_DFL:
            signal.signal(signum, signal.SIG_DFL)  # nobody else handles it: stop the default way, soon
            loop.call_later(1.0, signal.raise_signal, signum)

    try:
        for sig in SIGNALS:
            previous[sig] = signal.getsignal(sig)
            signal.signal(sig, handler)
    except ValueError:  # not the main thread
        return lambda: None

    def undo() -> None:
        for sig, before in previous.items():
            if signal.getsignal(sig) is handler and before is not None:
                signal.signal(sig, before)

    return undo
