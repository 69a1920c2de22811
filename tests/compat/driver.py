"""Driving the reference's Python SDK (``phaseo``) against vidgate, as an application would.

Teams on the reference switch by changing only the SDK's base URL, so every test builds a
``phaseo.Phaseo`` pointed at ``<gateway>/v1`` and calls its public methods unchanged.
"""

from __future__ import annotations

import json
import time
import urllib.error
from collections.abc import Callable
from typing import Any

from phaseo import Phaseo

MODEL = "vidgate/procedural"
SMALL: dict[str, Any] = {"duration": 1, "size": "160x90"}
LONG: dict[str, Any] = {"duration": 20, "size": "1280x720"}  # renders for seconds: time to cancel it
TERMINAL = frozenset({"completed", "failed", "cancelled", "expired"})


def sdk_for(base_url: str, key: str) -> Phaseo:
    """The SDK as a team on the reference configures it, with only the base URL changed."""
    return Phaseo(api_key=key, base_url=f"{base_url}/v1")


def wait_terminal(sdk: Phaseo, video_id: str, timeout: float = 60.0) -> dict[str, Any]:
    """Poll through the SDK (it has no wait helper of its own) until the job is over."""
    deadline = time.monotonic() + timeout
    job: dict[str, Any] = {}
    while time.monotonic() < deadline:
        job = sdk.videos.retrieve(video_id)
        if job["status"] in TERMINAL:
            return job
        time.sleep(0.1)
    raise AssertionError(f"{video_id} stayed {job.get('status')}: {job}")


def envelope(exc: urllib.error.HTTPError) -> dict[str, Any]:
    """The error envelope of a failed SDK call (the SDK raises urllib's HTTPError as it is)."""
    return json.loads(exc.read() or b"{}").get("error", {})


def call(fn: Callable[[], Any]) -> Any:
    """An SDK call that must succeed; a refusal fails the test with the gateway's own words."""
    try:
        return fn()
    except urllib.error.HTTPError as exc:
        raise AssertionError(f"HTTP {exc.code}: {envelope(exc)}") from None
