"""The real ``vidgate`` command against a running gateway: generate, models, videos, keys, and failures."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import av
import httpx
import pytest
from helpers.gateway import GatewayProcess, wait_status

from vidgate.gateway.auth import CACHE_SECONDS

MODEL = "vidgate/procedural"


def vidgate(*args: str, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(
        [sys.executable, "-m", "vidgate.cli.main", *args], env=env, capture_output=True, text=True, timeout=120
    )
    if check:
        assert out.returncode == 0, f"vidgate {' '.join(args)} exited {out.returncode}:\n{out.stderr}"
    return out


def as_json(out: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(out.stdout)


@pytest.fixture
def env(gateway: GatewayProcess, key: str) -> dict[str, str]:
    return {**os.environ, "VIDGATE_BASE_URL": gateway.base_url, "VIDGATE_API_KEY": key, "COLUMNS": "200"}


def duration_of(path: Path) -> float:
    with av.open(io.BytesIO(path.read_bytes())) as c:
        return float(c.duration / 1_000_000)


def test_generate_downloads_a_video_of_the_requested_length(env: dict[str, str], tmp_path: Path) -> None:
    target = tmp_path / "clip.mp4"
    out = vidgate(
        "generate",
        f"a red balloon {uuid.uuid4().hex[:6]}",
        "-o",
        str(target),
        "--size",
        "160x90",
        "--duration",
        "2",
        env=env,
    )
    assert out.stdout.strip().splitlines()[-1] == str(target)
    assert duration_of(target) == pytest.approx(2.0, abs=0.05)
    assert not target.with_name("clip.mp4.part").exists()

    again = tmp_path / "again.mp4"
    result = as_json(
        vidgate(
            "generate",
            "a blue kite",
            "-o",
            str(again),
            "--size",
            "160x90",
            "--duration",
            "1",
            "--seed",
            "3",
            "--json",
            env=env,
        )
    )
    assert result["path"] == str(again) and result["video"]["status"] == "completed"
    assert hashlib.sha256(again.read_bytes()).hexdigest() == result["video"]["asset"]["sha256"]
    assert duration_of(again) == pytest.approx(1.0, abs=0.05)


def test_models(env: dict[str, str]) -> None:
    assert MODEL in vidgate("models", env=env).stdout
    assert MODEL in {m["id"] for m in as_json(vidgate("models", "--json", env=env))["data"]}


def test_videos_list_get_download_cancel_delete(
    env: dict[str, str], gateway: GatewayProcess, key: str, tmp_path: Path
) -> None:
    with gateway.client(key) as api:
        job = api.post(
            "/v1/videos", json={"model": MODEL, "prompt": "a tide pool", "size": "160x90", "duration": 1}
        ).json()
        long = api.post(
            "/v1/videos", json={"model": MODEL, "prompt": "a long take", "size": "1920x1080", "duration": 20}
        ).json()
        wait_status(api, job["id"], {"completed"})
    cancelled = as_json(vidgate("videos", "cancel", long["id"], "--json", env=env))
    assert cancelled["id"] == long["id"] and cancelled["status"] == "cancelled"

    target = tmp_path / "dl.mp4"
    downloaded = as_json(vidgate("videos", "download", job["id"], "-o", str(target), "--json", env=env))
    assert downloaded == {"path": str(target)}
    got = as_json(vidgate("videos", "get", job["id"], "--json", env=env))
    assert got["status"] == "completed" and hashlib.sha256(target.read_bytes()).hexdigest() == got["asset"]["sha256"]
    assert job["id"] in vidgate("videos", "get", job["id"], env=env).stdout

    listed = as_json(vidgate("videos", "list", "--json", "--limit", "100", env=env))
    assert listed["object"] == "list" and {job["id"], long["id"]} <= {v["id"] for v in listed["data"]}
    only_cancelled = as_json(vidgate("videos", "list", "--status", "cancelled", "--json", env=env))
    assert [v["id"] for v in only_cancelled["data"]] == [long["id"]]
    assert long["id"] in vidgate("videos", "list", env=env).stdout

    deleted = as_json(vidgate("videos", "delete", long["id"], "--json", env=env))
    assert deleted == {"id": long["id"], "object": "video.deleted", "deleted": True}
    assert f"deleted {job['id']}" in vidgate("videos", "delete", job["id"], env=env).stdout


def test_failures_exit_non_zero_with_the_message_on_stderr(env: dict[str, str], tmp_path: Path) -> None:
    out = vidgate(
        "generate", "anything", "-o", str(tmp_path / "x.mp4"), "--model", "nobody/nothing", env=env, check=False
    )
    assert out.returncode != 0 and out.stdout == ""
    assert "model_not_found" in out.stderr and "nobody/nothing" in out.stderr and "param: model" in out.stderr
    missing = vidgate("videos", "get", "vid_01NOPE", "--json", env=env, check=False)
    assert missing.returncode != 0 and "not_found" in missing.stderr and missing.stdout == ""
    wrong_key = vidgate("models", env={**env, "VIDGATE_API_KEY": "vg_wrong"}, check=False)
    assert wrong_key.returncode != 0 and "unauthorized" in wrong_key.stderr


def test_keys_create_list_revoke(gateway: GatewayProcess) -> None:
    env = {**gateway.env}
    data_dir = str(gateway.data_dir)
    plain = vidgate("keys", "create", "--name", "cli-plain", "--data-dir", data_dir, env=env)
    secret = plain.stdout.strip().splitlines()[-1]
    created = as_json(
        vidgate("keys", "create", "--name", "cli-json", "--balance", "2.5", "--json", "--data-dir", data_dir, env=env)
    )
    assert {"id", "key"} <= created.keys() and created["key"] != secret

    for k in (secret, created["key"]):
        r = httpx.get(f"{gateway.base_url}/v1/videos", headers={"Authorization": f"Bearer {k}"})
        assert r.status_code == 200, r.text
    listed = as_json(vidgate("keys", "list", "--json", "--data-dir", data_dir, env=env))
    mine = {k["id"]: k for k in listed}
    assert created["id"] in mine and mine[created["id"]]["revoked_at"] is None
    assert all("key" not in k for k in listed), "keys list must never print secrets"
    assert created["id"] in vidgate("keys", "list", "--data-dir", data_dir, env=env).stdout

    revoked = vidgate("keys", "revoke", created["id"], "--data-dir", data_dir, env=env)
    assert created["id"] in revoked.stdout
    # The CLI revokes in its own process; the server's key cache honours that within CACHE_SECONDS.
    deadline = time.monotonic() + CACHE_SECONDS + 0.5
    while True:
        r = httpx.get(f"{gateway.base_url}/v1/videos", headers={"Authorization": f"Bearer {created['key']}"})
        if r.status_code == 401 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    if r.status_code != 401:  # that answer may have been begun before the cache lapsed: this one is not
        r = httpx.get(f"{gateway.base_url}/v1/videos", headers={"Authorization": f"Bearer {created['key']}"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    after = {k["id"]: k for k in as_json(vidgate("keys", "list", "--json", "--data-dir", data_dir, env=env))}
    assert after[created["id"]]["revoked_at"] is not None
    again = vidgate("keys", "revoke", "key_nope", "--data-dir", data_dir, env=env, check=False)
    assert again.returncode != 0 and again.stderr.startswith("error:")
