"""Object removal with the store away, and ``vidgate storage reconcile``, against a real ``vidgate serve``.

- a delete while the store is unreachable answers at once and succeeds; the objects stay while the
  store is away (their removal recorded, its attempts failing) and go once it is back;
- the same for retention expiring a job;
- ``vidgate storage reconcile --json``, run as a real subprocess, reports a planted orphan and a
  completed job whose object was removed behind the gateway's back; ``--repair`` removes the orphan
  past the grace period, keeps a young one and leaves the job as it was.

The S3 store (SeaweedFS, this module's own) is reached through a loopback switch: "away" accepts
connections and never answers, the hardest case for timeouts, while the test still reads the store
directly. The local store is taken away by moving its directory, as an unmounted disk would be.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers.backends import migrate, postgres_env, rows
from helpers.gateway import GatewayProcess, wait_status
from helpers.ledger import check_ledger

BACKENDS = [b for b in os.environ.get("VIDGATE_TEST_BACKENDS", "sqlite,postgres").split(",") if b]
RENDER = {"model": "vidgate/procedural", "prompt": "a lighthouse at dusk", "duration": 1, "size": "160x90"}
ANSWER_WITHIN = 10.0  # a delete waits 2 s on the store at most, then answers
_names = itertools.count()


def eventually(check: Callable[[], bool], what: str, timeout: float = 120.0) -> float:
    """Seconds until ``check`` holds."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)
    return time.monotonic() - start


class Switch:
    """A TCP relay in front of the S3 store: while away, connections are accepted and never answered."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.is_up = True
        self.loop = asyncio.new_event_loop()
        self.conns: set[asyncio.StreamWriter] = set()

    def start(self) -> Switch:
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            server = self.loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", 0))
            self.port = server.sockets[0].getsockname()[1]
            ready.set()
            self.loop.run_forever()

        threading.Thread(target=run, daemon=True).start()
        ready.wait(10)
        return self

    def set(self, up: bool) -> None:
        async def flip() -> None:
            self.is_up = up
            for w in list(self.conns):  # what was relayed or held so far ends with the flip
                w.transport.abort()

        asyncio.run_coroutine_threadsafe(flip(), self.loop).result(10)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.conns.add(writer)
        upstream: asyncio.StreamWriter | None = None
        try:
            if not self.is_up:
                while await reader.read(1 << 16):  # held: read and dropped until the client gives up
                    pass
                return
            up_reader, upstream = await asyncio.open_connection("127.0.0.1", self.target_port)
            self.conns.add(upstream)
            await asyncio.gather(self._pipe(reader, upstream), self._pipe(up_reader, writer))
        except OSError:
            pass
        finally:
            for w in (writer, upstream):
                if w is not None:
                    self.conns.discard(w)
                    w.transport.abort()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(1 << 16):
                writer.write(data)
                await writer.drain()
        finally:
            writer.transport.abort()


class Store:
    """The gateway's store as the test sees it, straight, whether or not the gateway can reach it."""

    def __init__(self, gw: GatewayProcess, s3: Any = None, switch: Switch | None = None) -> None:
        self.gw = gw
        self.s3 = s3
        self.switch = switch
        self.root = gw.data_dir / "blobs"
        self.away_root = gw.data_dir / "blobs-away"
        if s3 is not None:
            from obstore.store import S3Store

            bucket, _, self.base = gw.env["VIDGATE_BLOB_URL"][len("s3://") :].partition("/")
            self.store = S3Store(bucket, config=s3.store_config(), client_options={"allow_http": True})

    def _local(self) -> Path:
        return self.away_root if self.away_root.exists() else self.root

    def _full(self, key: str) -> str:
        return f"{self.base}/{key}" if self.base else key

    def keys(self, prefix: str = "videos/") -> list[str]:
        if self.s3 is None:
            root = self._local()
            return sorted(str(p.relative_to(root)) for p in (root / prefix).rglob("*") if p.is_file())
        import obstore

        strip = len(self.base) + 1 if self.base else 0
        return sorted(m["path"][strip:] for batch in obstore.list(self.store, self._full(prefix)) for m in batch)

    def put(self, key: str, *, age_seconds: float = 0.0) -> None:
        """An object as a write no job recorded would leave it (only local files can be aged)."""
        if self.s3 is None:
            path = self._local() / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"left behind")
            stamp = time.time() - age_seconds
            os.utime(path, (stamp, stamp))
            return
        import obstore

        obstore.put(self.store, self._full(key), b"left behind")

    def remove(self, key: str) -> None:
        if self.s3 is None:
            (self._local() / key).unlink()
            return
        import obstore

        obstore.delete(self.store, self._full(key))

    def away(self) -> None:
        if self.switch is not None:
            self.switch.set(False)
        else:
            self.root.rename(self.away_root)

    def back(self) -> None:
        if self.switch is not None:
            self.switch.set(True)
        else:
            self.away_root.rename(self.root)


@pytest.fixture(scope="module")
def own_s3() -> Iterator[Any]:
    """The module's own S3 server: nothing else sees its outages."""
    from infra.seaweed import SeaweedS3

    server = SeaweedS3().start()
    yield server
    server.stop()


@pytest.fixture
def deploy(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., tuple[GatewayProcess, Store]]]:
    """Start a gateway of the test's kind with ``env``; stopped, and the store brought back, after."""
    made: list[tuple[GatewayProcess, Store, Switch | None]] = []

    def make(kind: str, env: dict[str, str]) -> tuple[GatewayProcess, Store]:
        switch = s3 = None
        full = {"VIDGATE_SIGNING_SECRET": "reconcile-secret", **env}
        if kind == "postgres":
            s3 = request.getfixturevalue("own_s3")
            full.update(postgres_env(request.getfixturevalue("pg_server"), s3, f"rc_{os.getpid()}_{next(_names)}"))
            migrate(full)
            switch = Switch(s3.port).start()
            full["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{switch.port}"
        gw = GatewayProcess(tmp_path / f"gw{len(made)}", env=full).start()
        store = Store(gw, s3, switch)
        made.append((gw, store, switch))
        return gw, store

    yield make
    for gw, store, switch in made:
        gw.stop()
        if store.away_root.exists():
            store.away_root.rename(store.root)
        if switch is not None:
            switch.stop()


def completed_job(api: httpx.Client) -> str:
    r = api.post("/v1/videos", json=RENDER)
    assert r.status_code == 202, r.text
    job = wait_status(api, r.json()["id"], {"completed", "failed"})
    assert job["status"] == "completed", job
    return job["id"]


def attempts(gw: GatewayProcess, key: str) -> int:
    found = rows(gw, "SELECT attempts FROM pending_deletions WHERE key = ?", key)
    return found[0][0] if found else -1


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


@pytest.mark.parametrize("kind", BACKENDS)
def test_a_delete_with_the_store_away_succeeds_and_removes_the_objects_once_it_is_back(
    kind: str, deploy: Callable[..., tuple[GatewayProcess, Store]]
) -> None:
    gw, store = deploy(kind, {"VIDGATE_DELETION_RETRY_SECONDS": "0.5"})
    with gw.client(gw.new_key("deletes", balance=10.0)) as api:
        job = completed_job(api)
        keys = store.keys(f"videos/{job}/")  # the video, its thumbnail and its spritesheet
        [key] = [k for k in keys if k.endswith(".mp4")]
        store.away()
        try:
            t = time.monotonic()
            r = api.delete(f"/v1/videos/{job}")
            answered = time.monotonic() - t
            assert r.status_code == 200 and r.json()["id"] == job, r.text
            assert answered < ANSWER_WITHIN, answered
            assert api.get(f"/v1/videos/{job}").status_code == 404
            eventually(lambda: attempts(gw, key) >= 2, "the removal to be retried and fail again")
            assert store.keys(f"videos/{job}/") == keys, "an object went while the store was away"
            [(error,)] = rows(gw, "SELECT last_error FROM pending_deletions WHERE key = ?", key)
            assert error, "the record says why the removal failed"
            code, _, output = run_reconcile(gw, "--json")
            assert code == 1 and "cannot reconcile" in output, output  # no false report of missing outputs
            tries = attempts(gw, key)
        finally:
            store.back()
        removed = eventually(lambda: store.keys(f"videos/{job}/") == [], "the object to go once the store is back")
        eventually(lambda: attempts(gw, key) == -1, "the removal record to go")
    check_ledger(gw)
    print(
        f"\n{kind}: delete with the store away answered 200 in {answered:.2f}s; the object stayed through "
        f"{tries} failed removal attempts and went {removed:.1f}s after the store came back"
    )


@pytest.mark.parametrize("kind", BACKENDS)
def test_retention_with_the_store_away_expires_the_job_and_removes_its_objects_once_it_is_back(
    kind: str, deploy: Callable[..., tuple[GatewayProcess, Store]]
) -> None:
    retention = 6.0
    env = {"VIDGATE_RETENTION_DAYS": str(retention / 86_400), "VIDGATE_DELETION_RETRY_SECONDS": "0.5"}
    gw, store = deploy(kind, env)
    with gw.client(gw.new_key("retention", balance=10.0)) as api:
        job = completed_job(api)
        keys = store.keys(f"videos/{job}/")  # the video, its thumbnail and its spritesheet
        [key] = [k for k in keys if k.endswith(".mp4")]
        store.away()
        try:
            wait_status(api, job, {"expired"}, timeout=60)
            eventually(lambda: attempts(gw, key) >= 2, "the removal to be retried and fail again")
            assert store.keys(f"videos/{job}/") == keys, "an object went while the store was away"
            tries = attempts(gw, key)
        finally:
            store.back()
        removed = eventually(lambda: store.keys(f"videos/{job}/") == [], "the object to go once the store is back")
        eventually(lambda: attempts(gw, key) == -1, "the removal record to go")
        assert api.get(f"/v1/videos/{job}").json()["status"] == "expired"
    check_ledger(gw)
    print(
        f"\n{kind}: retention expired a job with the store away; its object stayed through {tries} failed "
        f"removal attempts and went {removed:.1f}s after the store came back"
    )


@pytest.mark.parametrize("kind", BACKENDS)
def test_reconcile_reports_orphans_and_missing_outputs_and_repair_removes_old_orphans(
    kind: str, deploy: Callable[..., tuple[GatewayProcess, Store]]
) -> None:
    gw, store = deploy(kind, {})
    with gw.client(gw.new_key("reconcile", balance=10.0)) as api:
        kept, lost = completed_job(api), completed_job(api)
        [lost_key] = [k for k in store.keys(f"videos/{lost}/") if k.endswith(".mp4")]
        store.remove(lost_key)  # behind the gateway's back
        old = f"videos/vid_{'0' * 26}/0-{'a' * 16}.mp4"
        young = f"videos/vid_{'1' * 26}/0-{'b' * 16}.mp4"
        store.put(old, age_seconds=7200)
        grace = "3600"
        if kind != "sqlite":  # S3 objects cannot be aged: a short grace, and the old one made first
            grace = "10"
            time.sleep(12)
        # Written again before each run, so it is young however long a run takes to start.
        store.put(young)

        code, before, output = run_reconcile(gw, "--json", "--grace-seconds", grace)
        assert code == 0, output
        orphans = {o["key"]: o for o in before["orphans"]}
        assert set(orphans) == {old, young}, orphans
        assert orphans[old]["removable"] and orphans[old]["job_status"] is None and orphans[old]["bytes"] == 11
        assert not orphans[young]["removable"]
        assert [(m["job_id"], m["index"], m["key"]) for m in before["missing"]] == [(lost, 0, lost_key)]
        assert before["objects"] == 7 and before["removed"] == [] and not before["repair"]  # 5 of jobs, 2 orphans
        ours = [*store.keys(f"videos/{kept}/"), *store.keys(f"videos/{lost}/")]
        assert store.keys() == sorted([*ours, old, young]), "a report changed the store"

        store.put(young)
        code, _, text = run_reconcile(gw, "--grace-seconds", grace)  # the table, for people
        assert code == 0 and "2 orphans (1 removable), 1 missing outputs" in text, text

        store.put(young)
        code, repaired, output = run_reconcile(gw, "--json", "--repair", "--grace-seconds", grace)
        assert code == 0, output
        assert repaired["removed"] == [old] and repaired["error"] is None, repaired
        left = store.keys()
        assert old not in left and young in left, left
        assert len(store.keys(f"videos/{kept}/")) == 3
        job = api.get(f"/v1/videos/{lost}").json()
        assert job["status"] == "completed", job  # a missing output is reported, the job left as it was

        store.put(young)
        code, after, output = run_reconcile(gw, "--json", "--grace-seconds", grace)
        assert code == 0, output
        assert [o["key"] for o in after["orphans"]] == [young]
        assert [m["job_id"] for m in after["missing"]] == [lost]
        r = api.get(f"/v1/videos/{kept}/content")
        assert r.status_code == 200 and r.content[4:8] == b"ftyp"
    check_ledger(gw)
    print(
        f"\n{kind}: reconcile found {len(before['orphans'])} orphaned objects "
        f"({sum(o['removable'] for o in before['orphans'])} past the grace period) and "
        f"{len(before['missing'])} missing output among {before['objects']} objects; after --repair, "
        f"{len(after['orphans'])} orphaned object (within the grace period), the missing output still reported"
    )
