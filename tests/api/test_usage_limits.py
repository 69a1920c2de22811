"""``GET /v1/usage/limits`` reads the request-rate bucket the throttle takes from, without taking from it."""

from __future__ import annotations

import time
from datetime import datetime

import pytest
from helpers.gateway import GatewayProcess

pytestmark = pytest.mark.both_backends

RATE = 1  # slow enough that the requests below drain the bucket faster than it refills
BURST = 60
SENT = 20


def test_the_bucket_goes_down_by_the_requests_sent(gateway: GatewayProcess) -> None:
    key = gateway.new_key("bucket")
    with gateway.admin() as admin:
        r = admin.patch(
            f"/v1/admin/keys/{gateway.key_id(key)}/limits", json={"rate_per_second": RATE, "rate_burst": BURST}
        )
        assert r.status_code == 200, r.text
    with gateway.client(key) as api:
        started = time.monotonic()
        first = api.get("/v1/usage/limits").json()
        for _ in range(SENT):
            assert api.get("/v1/videos").status_code == 200
        then = api.get("/v1/usage/limits").json()
        elapsed = time.monotonic() - started
    assert (first["rate_per_second"], first["rate_burst"]) == (RATE, BURST)
    # A fresh bucket is full; the read itself took its request's token and nothing more.
    assert BURST - 1 - RATE * elapsed - 0.01 <= first["rate_available"] <= BURST - 1 + 0.01
    # Each request since took one token (the second read's own included); the clock can only refill.
    went = first["rate_available"] - then["rate_available"]
    assert SENT + 1 - RATE * elapsed - 0.01 <= went <= SENT + 1 + 0.01, (first, then, elapsed)
    assert 0 <= then["rate_available"] < first["rate_available"] <= BURST
    # Full again once the missing tokens have refilled at the key's rate.
    missing = BURST - then["rate_available"]
    until_full = datetime.fromisoformat(then["rate_full_at"]).timestamp() - time.time()
    assert missing / RATE - 5 - elapsed <= until_full <= missing / RATE + 1


def test_no_rate_limit_has_no_bucket(gateway: GatewayProcess) -> None:
    with gateway.client(gateway.new_key("unlimited")) as api:
        r = api.get("/v1/usage/limits").json()
    assert r["rate_per_second"] is None and r["rate_available"] is None and r["rate_full_at"] is None
