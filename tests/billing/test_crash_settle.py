"""A crash between the upstream finishing and our settlement: restart settles exactly once."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from fakes.openai_fake import OpenAIFake
from fakes.server import FakeUpstream, small_mp4
from helpers.gateway import GatewayProcess, wait_status
from helpers.ledger import check_ledger


def test_kill_during_output_download_settles_once(tmp_path: Path) -> None:
    fake = OpenAIFake(polls_to_complete=1)
    fake.faults.hang_seconds = 20.0
    fake.faults.add("download", "timeout")  # the first download hangs: the gateway dies in the middle of it
    with FakeUpstream(fake.app) as upstream:
        config = tmp_path / "providers.toml"
        config.write_text(
            f'[providers.openai]\napi_key = "sk-test"\nbase_url = "{upstream.base_url}/v1"\n'
            "poll_interval_seconds = 0.2\ntimeout_seconds = 30\n"
        )
        env = {"VIDGATE_CONFIG": str(config)}
        gw = GatewayProcess(tmp_path / "gw", env=env).start()
        key = gw.new_key(balance=5.0)
        with gw.client(key) as api:
            job = api.post("/v1/videos", json={"model": "openai/sora-2", "prompt": "crash", "duration": 4}).json()
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and ("download", "timeout") not in fake.faults.applied:
                time.sleep(0.05)
            assert ("download", "timeout") in fake.faults.applied
            assert api.get(f"/v1/videos/{job['id']}").json()["status"] == "processing"
        gw.kill()
        gw2 = GatewayProcess(tmp_path / "gw", env=env, port=gw.port, log_name="serve2").start()
        try:
            with gw2.client(key) as api:
                done = wait_status(api, job["id"], {"completed", "failed"}, timeout=30)
        finally:
            gw2.stop()
    assert done["status"] == "completed" and done["billing"]["state"] == "settled"
    assert api is not None and done["asset"]["bytes"] == len(small_mp4())
    assert len([r for r in fake.requests if r.method == "POST"]) == 1  # never resubmitted
    conn = sqlite3.connect(tmp_path / "gw" / "vidgate.db")
    kinds = sorted(k for (k,) in conn.execute("SELECT kind FROM ledger WHERE job_id = ?", (job["id"],)))
    assert kinds == ["charge", "hold", "release"]
    check_ledger(gw)
