"""End this process's streams as soon as it is told to stop, before the server waits for them.

Servers deliver the ASGI lifespan shutdown only after open connections close, and an event stream or
websocket stays open until its job ends, so shutdown would wait for the longest job (granian drops
websockets without a close frame). On SIGTERM or SIGINT this sets the bus draining first: websockets
close with 1001, event streams end, ``/readyz`` answers 503, and clients reconnect elsewhere and
resume with ``Last-Event-ID`` or ``since=``. The server's own handler then runs as before.
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


def on_stop_signals(drain: Callable[[], None]) -> Callable[[], None]:
    """Call ``drain`` in the running loop on SIGTERM/SIGINT, then the handler that was there before.

    Returns the undo. Does nothing outside the main thread (an app run in-process by a test client),
    where signals cannot be handled.
    """
    loop = asyncio.get_running_loop()
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
