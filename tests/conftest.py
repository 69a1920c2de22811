"""Shared fixtures: a real gateway process on loopback per test session, and fresh API keys."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from helpers.gateway import GatewayProcess


@pytest.fixture(scope="session")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    proc = GatewayProcess(tmp_path_factory.mktemp("gateway")).start()
    yield proc
    proc.stop()


@pytest.fixture
def key(gateway: GatewayProcess) -> str:
    return gateway.new_key()


@pytest.fixture
def api(gateway: GatewayProcess, key: str) -> Iterator[httpx.Client]:
    with gateway.client(key) as client:
        yield client
