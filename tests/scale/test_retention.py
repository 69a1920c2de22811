"""Retention: outputs older than the configured retention are deleted and their jobs become expired."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from helpers import backends
from helpers.gateway import wait_status
from helpers.ledger import check_ledger


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_outputs_past_retention_are_deleted(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    extra = (
        {"pg": request.getfixturevalue("pg_server"), "s3": request.getfixturevalue("s3_server")}
        if kind == "postgres"
        else {}
    )
    gw = backends.start(
        kind,
        tmp_path / "gw",
        env={"VIDGATE_RETENTION_DAYS": str(3 / 86400), "VIDGATE_DELETION_RETRY_SECONDS": "0.5"},
        **extra,
    )
    try:
        with gw.client(gw.new_key()) as api:
            job = api.post(
                "/v1/videos",
                json={"model": "vidgate/procedural", "prompt": "keep briefly", "duration": 1, "size": "64x64"},
            ).json()
            done = wait_status(api, job["id"], {"completed"})
            assert backends.blob_keys(gw, f"videos/{job['id']}")
            expired = wait_status(api, job["id"], {"expired"}, timeout=20)
            assert expired["billing"]["state"] == "settled" and expired["usage"]["cost"] == done["usage"]["cost"]
            # Expiry records the removals in its own transaction; the worker's deletion sweep carries them out.
            deadline = time.monotonic() + 30
            while backends.blob_keys(gw, f"videos/{job['id']}") and time.monotonic() < deadline:
                time.sleep(0.2)
            assert backends.blob_keys(gw, f"videos/{job['id']}") == []
            r = api.get(f"/v1/videos/{job['id']}/content")
            assert r.status_code == 409 and "expired" in r.json()["error"]["message"]
            events = [
                t for (t,) in backends.rows(gw, "SELECT type FROM events WHERE job_id = ? ORDER BY seq", job["id"])
            ]
            assert events[-1] == "video.expired" and events.count("video.completed") == 1
        check_ledger(gw)
    finally:
        gw.stop()
