"""The one error envelope, checked the same way wherever a test expects a refusal."""

from __future__ import annotations

from typing import Any

import httpx


def envelope(r: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """The ``error`` of a refusal with ``status`` (and ``code``), after checking it names its request."""
    assert r.status_code == status, (r.status_code, r.text)
    err: dict[str, Any] = r.json()["error"]
    assert err["request_id"] == r.headers["x-request-id"] and err["message"], err
    if code is not None:
        assert err["code"] == code, err
    return err
