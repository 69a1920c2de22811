"""SIGTERM on a server that handles signals in its event loop: streams close first, then the server stops.

granian's workers stop their connections as soon as their handler runs; run at once, that dropped
websockets (1006) before their 1001 close frames were out.
"""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from vidgate.gateway.events import drain


def _stop_with_streams_open(streams: set[str], order: list[str]) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        stopped = asyncio.Event()

        def server_stops() -> None:
            order.append("server")
            stopped.set()

        loop.add_signal_handler(signal.SIGTERM, server_stops)
        undo = drain.on_stop_signals(lambda: order.append("drain"), lambda: not streams)
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            while "drain" not in order:
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.3)
            if streams:
                assert order == ["drain"], order  # the server waits while a stream is open
                streams.clear()  # its close frame is out
            await asyncio.wait_for(stopped.wait(), 30)
        finally:
            undo()
            loop.remove_signal_handler(signal.SIGTERM)

    asyncio.run(main())


def test_the_servers_handler_runs_once_the_streams_have_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(drain, "DRAIN_BOUND_SECONDS", 60.0)
    order: list[str] = []
    _stop_with_streams_open({"a websocket"}, order)
    assert order == ["drain", "server"]


def test_a_stream_that_never_closes_holds_the_server_only_so_long(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(drain, "DRAIN_BOUND_SECONDS", 0.5)
    order: list[str] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stopped = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stopped.set)
        undo = drain.on_stop_signals(lambda: order.append("drain"), lambda: False)
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            await asyncio.wait_for(stopped.wait(), 30)
        finally:
            undo()
            loop.remove_signal_handler(signal.SIGTERM)

    asyncio.run(main())
    assert order == ["drain"]


def test_undo_gives_the_server_its_handler_back() -> None:
    order: list[str] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stopped = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, lambda: (order.append("server"), stopped.set()))
        drain.on_stop_signals(lambda: order.append("drain"), lambda: True)()
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            await asyncio.wait_for(stopped.wait(), 30)
        finally:
            loop.remove_signal_handler(signal.SIGTERM)

    asyncio.run(main())
    assert order == ["server"]
