"""kill -9 of the whole gateway mid-render, then a restart: every job completes exactly once."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from helpers.gateway import GatewayProcess, wait_status
from helpers.ledger import check_ledger


def test_kill_9_mid_render_then_restart(tmp_path: Path) -> None:
    gw = GatewayProcess(tmp_path / "gw").start()
    try:
        key = gw.new_key("crash")
        with gw.client(key) as api:
            ids = [
                api.post(
                    "/v1/videos",
                    json={
                        "model": "vidgate/procedural",
                        "prompt": f"crash {i}",
                        "duration": 6,
                        "size": "1280x720",  # seconds of render each: still going when a slow poll looks
                        "seed": i,
                    },
                ).json()["id"]
                for i in range(4)
            ]
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                listed = api.get("/v1/videos", params={"limit": 100}).json()["data"]  # all four in one look
                jobs = [j for j in listed if j["id"] in ids]
                if any(j["status"] == "processing" and (j["progress"] or 0) > 5 for j in jobs):
                    break
                time.sleep(0.05)
            assert any(j["status"] == "processing" for j in jobs), jobs
            assert not all(j["status"] == "completed" for j in jobs), "too late to crash anything"
        gw.kill()
        killed_at = {j["id"]: (j["status"], j["progress"]) for j in jobs}

        gw2 = GatewayProcess(tmp_path / "gw", port=gw.port, log_name="serve2").start()
        try:
            with gw2.client(key) as api:
                done = [wait_status(api, i, {"completed", "failed"}, timeout=180) for i in ids]
        finally:
            gw2.stop()
    finally:
        gw.kill()

    assert [d["status"] for d in done] == ["completed"] * 4, (killed_at, done)
    assert all(d["asset"]["duration_seconds"] == 6.0 for d in done)
    db = tmp_path / "gw" / "vidgate.db"
    check_ledger(gw)
    conn = sqlite3.connect(db)
    for vid in ids:
        kinds = sorted(k for (k,) in conn.execute("SELECT kind FROM ledger WHERE job_id = ?", (vid,)))
        assert kinds == ["charge", "hold", "release"], (vid, kinds)
        (completed,) = conn.execute(
            "SELECT COUNT(*) FROM events WHERE job_id = ? AND type = 'video.completed'", (vid,)
        ).fetchone()
        assert completed == 1
    blobs = sorted(p.parent.name for p in (tmp_path / "gw" / "blobs" / "videos").glob("*/*.mp4"))
    assert blobs == sorted(ids)
    leftovers = list((tmp_path / "gw" / "tmp").glob("*/*"))
    assert leftovers == []
