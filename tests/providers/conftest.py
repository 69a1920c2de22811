"""One loopback server per adapter test module; each test plugs its own fresh fake into it.

A module defines a ``fake`` fixture; ``server`` serves that fake on the module's shared server, at
``root``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fakes.server import FakeUpstream


class SwapApp:
    """An ASGI app that forwards to whichever fake the current test installed."""

    app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


@pytest.fixture(scope="module")
def shared_server() -> Iterator[FakeUpstream]:
    swap = SwapApp()
    with FakeUpstream(swap) as running:  # type: ignore[arg-type]
        running.swap = swap  # type: ignore[attr-defined]
        yield running


@pytest.fixture
def server(shared_server: FakeUpstream, fake: Any) -> FakeUpstream:
    shared_server.swap.app = fake.app  # type: ignore[attr-defined]
    return shared_server


@pytest.fixture
def root(server: FakeUpstream) -> str:
    return server.base_url
