"""Shared fixtures: real gateway processes on loopback, on SQLite + local files or PostgreSQL + S3.

Modules marked ``both_backends`` run every test that uses ``gateway`` twice: once on the embedded
default and once on PostgreSQL with a SeaweedFS S3 store (both started once per session).
``VIDGATE_TEST_BACKENDS=sqlite`` narrows that to one.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from helpers import backends
from helpers.gateway import GatewayProcess

BACKENDS = [b for b in os.environ.get("VIDGATE_TEST_BACKENDS", "sqlite,postgres").split(",") if b]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "both_backends: run gateway tests on SQLite and on PostgreSQL + S3")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "gateway" in metafunc.fixturenames and metafunc.definition.get_closest_marker("both_backends"):
        metafunc.parametrize("backend", BACKENDS, indirect=True, scope="session")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Any]:
    from infra.postgres import PostgresServer

    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[Any]:
    from infra.seaweed import SeaweedS3

    server = SeaweedS3().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def backend(request: pytest.FixtureRequest) -> str:
    return getattr(request, "param", "sqlite")


@pytest.fixture(scope="session")
def gateway(
    backend: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    extra: dict[str, Any] = {}
    if backend == "postgres":
        extra = {"pg": request.getfixturevalue("pg_server"), "s3": request.getfixturevalue("s3_server")}
    proc = backends.start(backend, tmp_path_factory.mktemp(f"gateway-{backend}"), **extra)
    yield proc
    proc.stop()


@pytest.fixture
def key(gateway: GatewayProcess) -> str:
    return gateway.new_key()


@pytest.fixture
def api(gateway: GatewayProcess, key: str) -> Iterator[httpx.Client]:
    with gateway.client(key) as client:
        yield client


@pytest.fixture(autouse=True)
def _ledger_invariant(request: pytest.FixtureRequest) -> Iterator[None]:
    """After every test that used a shared gateway, its ledger must balance."""
    yield
    if "gateway" in request.fixturenames:
        from helpers.ledger import check_ledger

        check_ledger(request.getfixturevalue("gateway"))
