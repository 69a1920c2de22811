"""The worker and storage under pressure, against a real ``vidgate serve``.

- fairness: one key's backlog of renders must not hold back another key's first render for more
  than one of the backlog's jobs (counted in events, never timed);
- a full disk (a real tmpfs): creates answer 503 ``storage_full`` with Retry-After, and deletes
  still work, so space can be freed through the API;
- orphans: an object no job owns is swept once older than the grace period; outputs of completed
  jobs, fresh objects and objects a live job recorded before writing them are kept;
- a job step that keeps failing is retried with a growing backoff, its failures counted, and the
  job fails with its hold voided once they run out.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fakes.openai_fake import OpenAIFake
from fakes.server import FakeUpstream
from helpers import backends
from helpers.backends import blob_keys, rows
from helpers.gateway import GatewayProcess, wait_status
from helpers.ledger import check_ledger

BACKENDS = [b for b in os.environ.get("VIDGATE_TEST_BACKENDS", "sqlite,postgres").split(",") if b]
MODEL = "vidgate/procedural"


def start(kind: str, root: Path, request: pytest.FixtureRequest, env: dict[str, str]) -> GatewayProcess:
    extra: dict[str, Any] = {}
    if kind == "postgres":
        extra = {"pg": request.getfixturevalue("pg_server"), "s3": request.getfixturevalue("s3_server")}
    return backends.start(kind, root, env=env, **extra)


def create(api: httpx.Client, **fields: Any) -> dict[str, Any]:
    r = api.post("/v1/videos", json={"model": MODEL, "prompt": "a lighthouse at dusk", **fields})
    assert r.status_code == 202, r.text
    return r.json()


def eventually(check: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def execute(gw: GatewayProcess, sql: str, *params: Any) -> None:
    """A write on the gateway's own database (``rows`` reads only: SQLite would roll it back)."""
    url = backends.database_url(gw)
    if url.startswith("sqlite:///"):
        with contextlib.closing(sqlite3.connect(url.split("sqlite:///", 1)[1], timeout=10)) as conn:
            conn.execute(sql, params)
            conn.commit()
    else:
        rows(gw, sql, *params)


# ---- fairness ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", BACKENDS)
def test_one_keys_backlog_delays_another_keys_first_render_by_one_job_at_most(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    gw = start(kind, tmp_path / "gw", request, {"VIDGATE_RENDER_PARALLEL": "2", "VIDGATE_MAX_RENDERS_PER_KEY": "2"})
    try:
        a, b = gw.new_key("heavy", balance=100.0), gw.new_key("light", balance=10.0)
        with gw.client(a) as api_a, gw.client(b) as api_b:
            # One long render beside a stream of medium ones: the two render threads never free together.
            sizes = [("640x360", 1), ("1280x720", 6)] + [("640x360", 4)] * 8
            backlog = [create(api_a, size=size, duration=d)["id"] for size, d in sizes]
            light = create(api_b, size="320x180", duration=1)["id"]
            for job_id in [*backlog, light]:
                assert (
                    wait_status(api_a if job_id != light else api_b, job_id, {"completed", "failed"})["status"]
                    == "completed"
                )
        events = rows(gw, "SELECT seq, job_id, type FROM events ORDER BY seq")
        created = next(s for s, j, t in events if j == light and t == "video.created")
        rendering = next(s for s, j, t in events if j == light and t == "video.progress")
        finished = [s for s, j, t in events if j in backlog and t == "video.completed" and created < s < rendering]
        # At most the one render whose thread the light key's job then took.
        assert len(finished) <= 1, (len(finished), "of the heavy key's jobs completed before the light one began")
        check_ledger(gw)
    finally:
        gw.stop()


# ---- a full disk ---------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 8 MiB filesystem (tmpfs), unmounted afterwards."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    out = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(disk)], capture_output=True)
    if out.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {out.stderr.decode().strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def fill(disk: Path) -> Path:
    """Write until the filesystem has no byte left."""
    filler = disk / "filler"
    chunk = b"\0" * (64 << 10)
    with filler.open("wb", buffering=0) as fh:
        for size in (len(chunk), 4096, 1):
            try:
                while True:
                    fh.write(chunk[:size])
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
    return filler


def test_full_disk_refuses_creates_with_503_and_still_deletes(small_disk: Path, tmp_path: Path) -> None:
    env = {
        "VIDGATE_DATABASE_URL": f"sqlite:///{small_disk / 'vidgate.db'}",
        "VIDGATE_BLOB_URL": f"file://{small_disk / 'blobs'}",
        "VIDGATE_DISK_RESERVE_BYTES": str(1 << 20),
        "VIDGATE_DISK_MIN_FREE_BYTES": str(2 << 20),
    }
    gw = GatewayProcess(tmp_path / "gw", env=env).start()
    try:
        with gw.client(gw.new_key("full", balance=10.0)) as api:
            jobs = [create(api, size="160x90", duration=1)["id"] for _ in range(2)]
            for job_id in jobs:
                assert wait_status(api, job_id, {"completed", "failed"})["status"] == "completed"
            # An empty WAL, as after a checkpoint: every write from here on needs new space.
            with contextlib.closing(sqlite3.connect(small_disk / "vidgate.db", timeout=10)) as conn:
                assert conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0
            filler = fill(small_disk)

            r = api.post("/v1/videos", json={"model": MODEL, "prompt": "no room", "duration": 1, "size": "160x90"})
            assert r.status_code == 503, r.text
            assert int(r.headers["retry-after"]) > 0
            err = r.json()["error"]
            assert err["code"] == "storage_full" and err["type"] == "api_error" and err["message"]
            assert err["param"] is None and err["request_id"] == r.headers["x-request-id"]

            for job_id in jobs:
                r = api.delete(f"/v1/videos/{job_id}")
                assert r.status_code == 200, r.text
                assert r.json()["id"] == job_id
                assert api.get(f"/v1/videos/{job_id}").status_code == 404
            assert [p for p in (small_disk / "blobs").rglob("*") if p.is_file()] == []

            filler.unlink()
            eventually(
                lambda: api.post("/v1/videos", json={"model": MODEL, "prompt": "room again"}).status_code == 202,
                "creates to work again once space is back",
                timeout=30,
            )
        check_ledger(gw)
    finally:
        gw.stop()


# ---- orphaned objects ----------------------------------------------------------------------------


def _s3_store(gw: GatewayProcess) -> tuple[Any, str]:
    from obstore.store import S3Store

    bucket, _, base = gw.env["VIDGATE_BLOB_URL"][len("s3://") :].partition("/")
    store = S3Store(
        bucket,
        endpoint=gw.env["AWS_ENDPOINT_URL"],
        region=gw.env.get("AWS_REGION", "us-east-1"),
        access_key_id=gw.env["AWS_ACCESS_KEY_ID"],
        secret_access_key=gw.env["AWS_SECRET_ACCESS_KEY"],
        client_options={"allow_http": True},
    )
    return store, base


def put_object(gw: GatewayProcess, key: str, *, age_seconds: float = 0.0) -> None:
    """Write ``key`` straight into the gateway's store, as a write no job recorded would leave it."""
    if "VIDGATE_BLOB_URL" not in gw.env:
        path = gw.data_dir / "blobs" / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"left behind")
        stamp = time.time() - age_seconds
        os.utime(path, (stamp, stamp))
        return
    import obstore

    store, base = _s3_store(gw)
    obstore.put(store, f"{base}/{key}" if base else key, b"left behind")


@pytest.mark.parametrize("kind", BACKENDS)
def test_unowned_objects_are_swept_and_owned_ones_kept(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    # Local files can be aged by hand; S3 objects cannot, so there the grace period is a second.
    grace = "60" if kind == "sqlite" else "1"
    gw = start(
        kind,
        tmp_path / "gw",
        request,
        {"VIDGATE_ORPHAN_GRACE_SECONDS": grace, "VIDGATE_ORPHAN_SWEEP_SECONDS": "0.3"},
    )
    old = 7200.0
    try:
        with gw.client(gw.new_key("orphans", balance=10.0)) as api:
            done = create(api, size="160x90", duration=1)["id"]
            assert wait_status(api, done, {"completed", "failed"})["status"] == "completed"
            [output] = [k for k in blob_keys(gw, f"videos/{done}") if k.endswith(".mp4")]
            if kind == "sqlite":  # as old as the orphans: only ownership keeps it
                os.utime(gw.data_dir / "blobs" / output, (time.time() - old,) * 2)
            # A live job, and an object it recorded before writing: the state a cancel can race.
            live = create(api, size="1920x1080", duration=20)["id"]
            wait_status(api, live, {"processing"})
            in_flight = f"videos/{live}/0-{'f' * 16}.mp4"
            execute(
                gw,
                "INSERT INTO pending_objects (key, job_id, created_at) VALUES (?, ?, ?)",
                in_flight,
                live,
                int((time.time() - old) * 1000),
            )
            put_object(gw, in_flight, age_seconds=old)
            orphan = f"videos/vid_{'0' * 26}/0-{'a' * 16}.mp4"
            put_object(gw, orphan, age_seconds=old)
            fresh = f"videos/vid_{'1' * 26}/0-{'b' * 16}.mp4"
            if kind == "sqlite":
                put_object(gw, fresh)

            eventually(lambda: orphan not in blob_keys(gw, "videos"), "the orphan to be swept")
            kept = blob_keys(gw, "videos")
            assert output in kept and in_flight in kept, kept
            assert kind != "sqlite" or fresh in kept, kept
            r = api.get(f"/v1/videos/{done}/content")
            assert r.status_code == 200 and r.content[4:8] == b"ftyp"

            # The cancel ends the job without recording the object: now nothing owns it.
            assert api.post(f"/v1/videos/{live}/cancel").status_code == 200
            eventually(lambda: in_flight not in blob_keys(gw, "videos"), "the cancelled job's object to be swept")
            eventually(
                lambda: rows(gw, "SELECT key FROM pending_objects WHERE job_id = ?", live) == [], "its record to go"
            )
            assert output in blob_keys(gw, "videos")
        check_ledger(gw)
    finally:
        gw.stop()


# ---- a job step that keeps failing ---------------------------------------------------------------


class Stamped:
    """ASGI middleware noting when each output download reaches the fake upstream, and answering it
    with bytes that are no video (a 200 with an error page, as a garbled transfer looks)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.downloads: list[float] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].endswith("/content"):
            self.downloads.append(time.monotonic())
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"video/mp4")]})
            await send({"type": "http.response.body", "body": b"<html>busy, try later</html>"})
            return
        await self.app(scope, receive, send)


def test_a_failing_step_backs_off_counts_attempts_and_fails_with_the_hold_voided(tmp_path: Path) -> None:
    fake = OpenAIFake(polls_to_complete=1)
    stamped = Stamped(fake.app)
    upstream = FakeUpstream(stamped).start()  # type: ignore[arg-type]
    config = tmp_path / "providers.toml"
    config.write_text(
        f'[providers.openai]\napi_key = "sk-test"\nbase_url = "{upstream.base_url}/v1"\n'
        "poll_interval_seconds = 0.2\ntimeout_seconds = 2.0\n"
    )
    data = tmp_path / "gw"
    # Every download is garbled, so storing the output fails the same way each time. (An object
    # store that is down is not a failed step: see tests/reliability/test_exactly_once.py.)
    env = {"VIDGATE_CONFIG": str(config), "VIDGATE_STEP_RETRY_SECONDS": "0.5", "VIDGATE_MAX_STEP_FAILURES": "4"}
    gw = GatewayProcess(data, env=env).start()
    try:
        with gw.client(gw.new_key("failing", balance=10.0)) as api:
            r = api.post("/v1/videos", json={"model": "openai/sora-2", "prompt": "a storm", "size": "1280x720"})
            assert r.status_code == 202, r.text
            job = wait_status(api, r.json()["id"], {"completed", "failed"}, timeout=60)
        assert job["status"] == "failed", job
        assert job["error"]["code"] == "internal_error" and "gave up after 4 failed steps" in job["error"]["message"]
        assert str(data) not in job["error"]["message"]  # what decoding said names a path: only the log has it
        assert job["billing"]["state"] == "void"
        # Every attempt fetched the output once: four attempts, each later than the last by at least
        # the doubling backoff (a re-claim at once would show as gaps near zero).
        times = stamped.downloads
        assert len(times) == 4, times
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert all(gap >= 0.5 * 2**i for i, gap in enumerate(gaps)), gaps
        check_ledger(gw)
    finally:
        gw.stop()
        upstream.stop()
