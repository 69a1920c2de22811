"""One running gateway in front of a fleet of fakes, for the tests that go through the HTTP API.

A module's fixtures delegate here: ``fleet`` (module-wide), ``gw`` (a gateway configured for that
fleet) and ``client`` (the fleet's state reset, then a fresh funded key), each named by ``label``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import httpx
import pytest
from helpers.gateway import GatewayProcess, wait_status

from providers.wiring import Fleet

TERMINAL = {"completed", "failed", "cancelled", "expired"}


def fleet_of(names: Iterable[str], settings: Mapping[str, Mapping[str, Any]]) -> Iterator[Fleet]:
    running = Fleet(names, settings)
    yield running
    running.stop()


def gateway_for(fleet: Fleet, tmp_path_factory: pytest.TempPathFactory, label: str) -> Iterator[GatewayProcess]:
    root = tmp_path_factory.mktemp(label)
    proc = GatewayProcess(root / "gw", env={"VIDGATE_CONFIG": str(fleet.config(root / "providers.toml"))})
    yield proc.start()
    proc.stop()


def fresh_client(gw: GatewayProcess, fleet: Fleet, label: str) -> Iterator[httpx.Client]:
    fleet.reset()
    with gw.client(gw.new_key(label, balance=100.0)) as c:
        yield c


def finish(client: httpx.Client, body: dict[str, Any], status: str = "completed") -> dict[str, Any]:
    """Create a job from ``body`` (a fixed prompt unless it names one) and wait until it is over, as ``status``."""
    r = client.post("/v1/videos", json={"prompt": "the heron lifts off the water", **body})
    assert r.status_code == 202, r.text
    done = wait_status(client, r.json()["id"], TERMINAL, timeout=60)
    assert done["status"] == status, done
    return done
