"""``vidgate storage reconcile`` on uploads (``POST /v1/files``), as a real subprocess, on SQLite with
local files and on PostgreSQL with S3 (SeaweedFS): objects no upload row names are orphans (removed
by ``--repair`` once past the grace period), a row whose object is gone is reported and left alone,
and a row past its expiry still kept is reported and, with ``--repair``, removed with its object."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import backends
from helpers.backends import blob_keys, execute, rows
from helpers.gateway import GatewayProcess
from helpers.media import png_bytes

BACKENDS = [b for b in os.environ.get("VIDGATE_TEST_BACKENDS", "sqlite,postgres").split(",") if b]
ORPHAN_BYTES = b"left behind by a crash"
S3_GRACE = 20.0


class Store:
    """The gateway's store as the test reaches it directly: local files or its S3 bucket."""

    def __init__(self, gw: GatewayProcess) -> None:
        self.gw = gw
        self.root = gw.data_dir / "blobs"
        self.s3: Any = None
        blob_url = gw.env.get("VIDGATE_BLOB_URL")
        if blob_url:
            from obstore.store import S3Store

            bucket, _, self.base = blob_url[len("s3://") :].partition("/")
            env = gw.env
            self.s3 = S3Store(
                bucket,
                endpoint=env["AWS_ENDPOINT_URL"],
                region=env.get("AWS_REGION", "us-east-1"),
                access_key_id=env["AWS_ACCESS_KEY_ID"],
                secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
                client_options={"allow_http": True},
            )

    def keys(self) -> list[str]:
        return blob_keys(self.gw, "uploads/")

    def put(self, key: str, *, age_seconds: float = 0.0) -> None:
        """An object as a write no row recorded leaves it (only local files can be aged)."""
        if self.s3 is None:
            path = self.root / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(ORPHAN_BYTES)
            stamp = time.time() - age_seconds
            os.utime(path, (stamp, stamp))
            return
        import obstore

        obstore.put(self.s3, f"{self.base}/{key}" if self.base else key, ORPHAN_BYTES)

    def remove(self, key: str) -> None:
        if self.s3 is None:
            (self.root / key).unlink()
            return
        import obstore

        obstore.delete(self.s3, f"{self.base}/{key}" if self.base else key)


@pytest.fixture
def deploy(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[str], GatewayProcess]]:
    made: list[GatewayProcess] = []

    def make(kind: str) -> GatewayProcess:
        extra: dict[str, Any] = {}
        if kind == "postgres":
            extra = {"pg": request.getfixturevalue("pg_server"), "s3": request.getfixturevalue("s3_server")}
        gw = backends.start(kind, tmp_path / f"gw{len(made)}", **extra)
        made.append(gw)
        return gw

    yield make
    for gw in made:
        gw.stop()


def run_reconcile(gw: GatewayProcess, *args: str) -> tuple[int, dict[str, Any], str]:
    out = subprocess.run(
        [sys.executable, "-m", "vidgate.cli.main", "storage", "reconcile", "--data-dir", str(gw.data_dir), *args],
        env=gw.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    report = json.loads(out.stdout) if "--json" in args and out.returncode == 0 else {}
    return out.returncode, report, out.stdout + out.stderr


def upload(gw: GatewayProcess, key: str, colour: tuple[int, int, int]) -> dict[str, Any]:
    with gw.client(key) as api:
        r = api.post("/v1/files", files={"file": ("f.png", png_bytes(colour), "application/octet-stream")})
    assert r.status_code in (200, 201), r.text
    return dict(r.json())


def object_of(gw: GatewayProcess, file_id: str) -> str:
    [(key,)] = rows(gw, "SELECT key FROM files WHERE id = ?", file_id)
    return str(key)


def plant_old(store: Store, *keys: str) -> None:
    for key in keys:
        store.put(key, age_seconds=7200)


@pytest.mark.parametrize("kind", BACKENDS)
def test_reconcile_reports_orphaned_missing_and_expired_uploads_and_repair_cleans_what_is_safe(
    kind: str, deploy: Callable[[str], GatewayProcess]
) -> None:
    gw = deploy(kind)
    store = Store(gw)
    old = f"uploads/file_{'0' * 26}/{'a' * 16}.png"  # a crash between the write and the row
    young = f"uploads/file_{'1' * 26}/{'b' * 16}.png"  # as an upload in flight looks
    stray = "uploads/notes.txt"  # not a key the gateway writes: reported, never removed
    planted = time.monotonic()
    if store.s3 is not None:  # S3 objects cannot be aged: the old ones first, the young one a grace period later
        plant_old(store, old, stray)
    key = gw.new_key("uploads", balance=1.0)
    kept, lost, expired = (upload(gw, key, c)["id"] for c in ((200, 10, 10), (10, 200, 10), (10, 10, 200)))
    kept_key, lost_key, expired_key = (object_of(gw, f) for f in (kept, lost, expired))
    gw.stop()  # the tool works on the database and the store alone; no sweep runs meanwhile
    if store.s3 is None:  # aged on disk, past the gateway's own grace: planted once its sweeper is stopped
        plant_old(store, old, stray)
    store.remove(lost_key)  # behind the gateway's back
    execute(gw, "UPDATE files SET expires_at = ? WHERE id = ?", int(time.time() * 1000) - 60_000, expired)
    grace = 3600.0
    if store.s3 is not None:  # long enough for the young one to stay young through three runs
        grace = S3_GRACE
        time.sleep(max(0.0, grace + 2 - (time.monotonic() - planted)))
    store.put(young)
    before_keys = store.keys()

    code, before, output = run_reconcile(gw, "--json", "--grace-seconds", str(grace))
    assert code == 0, output
    orphans = {o["key"]: o for o in before["orphans"]}
    assert set(orphans) == {old, young, stray}, orphans
    assert orphans[old]["upload_id"] == f"file_{'0' * 26}" and orphans[old]["job_id"] is None
    assert orphans[old]["removable"] and orphans[old]["bytes"] == len(ORPHAN_BYTES)
    assert not orphans[young]["removable"] and orphans[young]["upload_id"] == f"file_{'1' * 26}"
    assert not orphans[stray]["removable"] and orphans[stray]["upload_id"] is None
    assert [(m["file_id"], m["key"]) for m in before["missing_uploads"]] == [(lost, lost_key)]
    [late] = before["expired_uploads"]
    assert (late["file_id"], late["key"], late["object_present"]) == (expired, expired_key, True), late
    assert late["expired_seconds"] >= 59
    assert before["objects"] == 5 and before["missing"] == [] and before["removed"] == []  # 2 uploads, 3 planted
    assert store.keys() == before_keys, "a report changed the store"

    code, _, text = run_reconcile(gw, "--grace-seconds", str(grace))  # the tables, for people
    assert code == 0, text
    assert "3 orphans (1 removable), 0 missing outputs, 1 missing uploads, 1 expired uploads" in text, text
    assert "uploads with a missing object (1)" in text and "expired uploads still kept (1)" in text
    assert "run with --repair" in text

    code, repaired, output = run_reconcile(gw, "--json", "--repair", "--grace-seconds", str(grace))
    assert code == 0, output
    assert repaired["removed"] == [old] and repaired["expired_removed"] == 1 and repaired["error"] is None, repaired
    assert store.keys() == sorted([kept_key, young, stray])
    assert sorted(r[0] for r in rows(gw, "SELECT id FROM files")) == sorted([kept, lost])  # the lost row is kept
    assert rows(gw, "SELECT key FROM pending_deletions") == []

    code, after, output = run_reconcile(gw, "--json", "--grace-seconds", str(grace))
    assert code == 0, output
    assert sorted(o["key"] for o in after["orphans"]) == sorted([young, stray])
    assert [m["file_id"] for m in after["missing_uploads"]] == [lost] and after["expired_uploads"] == []
    print(
        f"\n{kind}: reconcile found {len(before['orphans'])} orphaned upload objects (1 past the grace period), "
        f"{len(before['missing_uploads'])} upload with no object and {len(before['expired_uploads'])} expired "
        f"upload still kept; --repair removed the old orphan and the expired upload, and left the rest"
    )
