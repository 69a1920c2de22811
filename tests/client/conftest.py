"""Fixtures for the SDK, CLI and OpenAI-dialect tests: a chaos proxy in front of the session gateway."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fakes.chaos_proxy import ChaosProxy
from helpers.gateway import GatewayProcess


@pytest.fixture(scope="session")
def chaos(gateway: GatewayProcess) -> Iterator[ChaosProxy]:
    with ChaosProxy(gateway.base_url) as proxy:
        yield proxy


@pytest.fixture
def proxy(chaos: ChaosProxy) -> Iterator[ChaosProxy]:
    """The session proxy, with no faults queued and nothing recorded."""
    chaos.clear()
    yield chaos
    chaos.clear()
