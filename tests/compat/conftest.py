"""Fixtures for driving the reference's published Python SDK against real gateway processes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fakes.server import FakeUpstream
from helpers.gateway import GatewayProcess
from phaseo import Phaseo

from compat.driver import sdk_for
from compat.receiver import Receiver

FAST_RETRIES = {"VIDGATE_WEBHOOK_BACKOFF_BASE_SECONDS": "0.02"}


@pytest.fixture
def sdk(gateway: GatewayProcess, key: str) -> Phaseo:
    return sdk_for(gateway.base_url, key)


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    rec = Receiver()
    rec.server = FakeUpstream(rec.app())
    with rec.server:
        yield rec


@pytest.fixture(scope="module")
def hooks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """A gateway of its own whose webhook retries back off in milliseconds."""
    proc = GatewayProcess(tmp_path_factory.mktemp("phaseo-hooks"), env=FAST_RETRIES, log_name="hooks").start()
    yield proc
    proc.stop()
