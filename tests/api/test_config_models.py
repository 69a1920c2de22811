"""Models declared in the config file, through a real ``vidgate serve``: one added and run end to end
on the built-in provider, one overridden, one left out, a retired one listed only when asked, and a
config mistake refused at start as one line with a non-zero exit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from helpers.gateway import GatewayProcess, wait_status

CONFIG = """
[models."acme/one"]
name = "Acme One"
durations = [2, 3]
resolutions = ["360p"]
aspect_ratios = ["16:9"]
default_resolution = "360p"
default_aspect_ratio = "16:9"
providers = [{ name = "vidgate", model = "procedural-v1" }]
pricing = { per_second = 5000 }

[models."vidgate/procedural"]
name = "Local renderer"

[models."luma/ray-2"]
enabled = false
"""


def test_a_configured_model_runs_end_to_end(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(CONFIG)
    gw = GatewayProcess(tmp_path / "gw", env={"VIDGATE_CONFIG": str(config)}).start()
    try:
        with gw.client(gw.new_key()) as api:
            listed = {m["id"]: m for m in api.get("/v1/videos/models").json()["data"]}
            assert listed["acme/one"]["capabilities"]["durations"] == [2, 3]
            assert listed["acme/one"]["pricing"]["per_second"] == 0.005
            assert listed["vidgate/procedural"]["name"] == "Local renderer"
            assert "luma/ray-2" not in listed and "openai/sora-2" not in listed
            retired = {m["id"]: m for m in api.get("/v1/videos/models?include_retired=true").json()["data"]}
            assert retired["openai/sora-2"]["status"] == "retired"
            assert retired["openai/sora-2"]["retired"] == "2026-09-24"

            r = api.post("/v1/videos", json={"model": "acme/one", "prompt": "a red kite", "duration": 4})
            assert r.status_code == 400 and r.json()["error"]["param"] == "duration", r.text
            gone = api.post("/v1/videos", json={"model": "openai/sora-2", "prompt": "a red kite"})
            assert gone.status_code == 410 and gone.json()["error"]["code"] == "model_retired", gone.text
            assert "2026-09-24" in gone.json()["error"]["message"]
            r = api.post("/v1/videos", json={"model": "luma/ray-2", "prompt": "a red kite"})
            assert r.status_code == 400 and r.json()["error"]["code"] == "model_not_found", r.text

            r = api.post("/v1/videos", json={"model": "acme/one", "prompt": "a red kite", "duration": 2})
            assert r.status_code == 202, r.text
            done = wait_status(api, r.json()["id"], {"completed", "failed"})
            assert done["status"] == "completed", done
            assert done["model"] == "acme/one"
    finally:
        gw.stop()


def test_a_config_mistake_stops_the_start_as_one_line(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[models."acme/v1"]\ndurations = ["5"]\nproviders = [{ name = "vidgate", model = "x" }]\n')
    run = subprocess.run(
        [sys.executable, "-m", "vidgate.cli.main", "serve", "--data-dir", str(tmp_path / "d"), "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode != 0
    lines = run.stderr.strip().splitlines()
    assert lines == [f'error: {config}: [models."acme/v1"].durations: expected a list of integers'], run.stderr
