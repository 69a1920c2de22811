"""The test infrastructure works for real: PostgreSQL and SeaweedFS S3 on loopback.

Skipped (with the reason) only when the binaries are absent; scripts/setup-test-env installs them.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
import textwrap
import time
from datetime import timedelta
from pathlib import Path

import pytest

from infra import postgres as pg_mod
from infra import seaweed as weed_mod
from infra.postgres import PostgresServer, PostgresUnavailable, find_pg_bindir
from infra.seaweed import SeaweedS3, SeaweedUnavailable, find_weed


def _missing(finder, exc) -> str | None:
    try:
        finder()
    except exc as e:
        return str(e)
    return None


PG_MISSING = _missing(find_pg_bindir, PostgresUnavailable)
WEED_MISSING = _missing(find_weed, SeaweedUnavailable)
needs_pg = pytest.mark.skipif(PG_MISSING is not None, reason=PG_MISSING or "")
needs_weed = pytest.mark.skipif(WEED_MISSING is not None, reason=WEED_MISSING or "")

MiB = 1024 * 1024


def _listen_addresses(pid: int) -> set[str]:
    """Local addresses of the TCP sockets process ``pid`` listens on (from /proc, as root)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        for line in Path(table).read_text().splitlines()[1:]:
            cols = line.split()
            local, state, inode = cols[1], cols[3], cols[9]
            if state == "0A" and inode in inodes:  # 0A = LISTEN
                addr = local.split(":")[0]
                if width == 8:
                    found.add(".".join(str(int(addr[i : i + 2], 16)) for i in (6, 4, 2, 0)))
                else:
                    found.add("v6:" + addr)
    return found


# ---------------------------------------------------------------------------- PostgreSQL
@pytest.fixture(scope="module")
def pg():
    server = PostgresServer().start()
    print(f"\nPostgreSQL started in {server.startup_seconds:.2f}s: {server.dsn}")
    yield server
    server.stop()


@needs_pg
def test_postgres_listens_on_loopback_only(pg: PostgresServer):
    assert pg.running
    assert pg.dsn.startswith("postgresql://postgres@127.0.0.1:")
    assert _listen_addresses(pg._proc.pid) == {"127.0.0.1"}
    assert pg.psql("SHOW listen_addresses").strip() == "127.0.0.1"
    assert pg.psql("SHOW fsync").strip() == "off"
    assert pg.psql("SHOW max_connections").strip() == "200"


@needs_pg
async def test_postgres_table_roundtrip(pg: PostgresServer):
    import asyncpg

    conn = await asyncpg.connect(pg.dsn)
    try:
        await conn.execute("CREATE TABLE roundtrip (id bigserial PRIMARY KEY, body jsonb NOT NULL)")
        await conn.executemany("INSERT INTO roundtrip (body) VALUES ($1)", [('{"a": 1}',), ('{"a": 2}',)])
        rows = await conn.fetch("SELECT id, body->>'a' AS a FROM roundtrip ORDER BY id")
        assert [(r["id"], r["a"]) for r in rows] == [(1, "1"), (2, "2")]
    finally:
        await conn.close()


@needs_pg
async def test_postgres_skip_locked_gives_different_rows(pg: PostgresServer):
    import asyncpg

    dsn = pg.create_database("skip_locked")
    setup = await asyncpg.connect(dsn)
    await setup.execute("CREATE TABLE jobs (id int PRIMARY KEY, state text NOT NULL DEFAULT 'queued')")
    await setup.execute("INSERT INTO jobs (id) SELECT g FROM generate_series(1, 5) g")
    await setup.close()

    claim = "SELECT id FROM jobs WHERE state = 'queued' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED"
    a, b = await asyncpg.connect(dsn), await asyncpg.connect(dsn)
    try:
        ta, tb = a.transaction(), b.transaction()
        await ta.start()
        await tb.start()
        id_a = await a.fetchval(claim)
        id_b = await b.fetchval(claim)
        assert (id_a, id_b) == (1, 2)
        rest = await b.fetch(claim.replace("LIMIT 1 ", ""))
        assert [r["id"] for r in rest] == [2, 3, 4, 5]  # row 1 is skipped; b's own lock is no obstacle
        await ta.rollback()
        assert await b.fetchval(claim) == 1  # a's lock released: row 1 claimable again
        await tb.rollback()
    finally:
        await a.close()
        await b.close()


@needs_pg
async def test_postgres_listen_notify(pg: PostgresServer):
    import asyncpg

    listener, sender = await asyncpg.connect(pg.dsn), await asyncpg.connect(pg.dsn)
    got: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
    try:
        await listener.add_listener("job_events", lambda _c, _pid, ch, payload: got.put_nowait((ch, payload)))
        await sender.execute("SELECT pg_notify('job_events', 'job-42:succeeded')")
        assert await asyncio.wait_for(got.get(), timeout=5) == ("job_events", "job-42:succeeded")
        async with sender.transaction():  # delivered only at commit
            await sender.execute("NOTIFY job_events, 'in-tx'")
        assert await asyncio.wait_for(got.get(), timeout=5) == ("job_events", "in-tx")
    finally:
        await listener.close()
        await sender.close()


@needs_pg
async def test_postgres_create_database_isolated_and_from_template(pg: PostgresServer):
    import asyncpg

    t0 = time.monotonic()
    tmpl = pg.create_database("tmpl_schema")
    conn = await asyncpg.connect(tmpl)
    await conn.execute("CREATE TABLE migrated (x int); INSERT INTO migrated VALUES (7)")
    await conn.close()
    copy = pg.create_database("from_tmpl", template="tmpl_schema")
    other = pg.create_database("empty_db")
    elapsed = time.monotonic() - t0

    conn = await asyncpg.connect(copy)
    assert await conn.fetchval("SELECT x FROM migrated") == 7
    await conn.close()
    conn = await asyncpg.connect(other)
    assert await conn.fetchval("SELECT to_regclass('migrated')") is None
    await conn.close()
    pg.drop_database("empty_db")
    assert elapsed < 10


# ---------------------------------------------------------------------------- SeaweedFS S3
@pytest.fixture(scope="module")
def s3():
    server = SeaweedS3().start()
    print(f"\nSeaweedFS S3 started in {server.startup_seconds:.2f}s: {server.endpoint}")
    yield server
    server.stop()


@pytest.fixture
def store(s3: SeaweedS3):
    from obstore.store import S3Store

    return S3Store(s3.bucket, config=s3.store_config(), client_options={"allow_http": True})


def _chunks(total: int, size: int = 256 * 1024, seed: bytes = b"vidgate"):
    """Deterministic pseudo-random bytes, yielded in pieces (a streaming source)."""
    produced, counter = 0, 0
    while produced < total:
        block = b"".join(
            hashlib.sha256(seed + (counter * 1000 + i).to_bytes(8, "big")).digest() for i in range(size // 32)
        )[: total - produced]
        counter += 1
        produced += len(block)
        yield block


@needs_weed
def test_seaweed_listens_on_loopback_only(s3: SeaweedS3):
    assert s3.running
    assert s3.endpoint.startswith("http://127.0.0.1:")
    assert _listen_addresses(s3._proc.pid) == {"127.0.0.1"}


@needs_weed
def test_s3_object_lifecycle(s3: SeaweedS3, store):
    import httpx
    import obstore

    size = 3 * MiB
    expected = b"".join(_chunks(size))
    path = "videos/job-1/output.mp4"

    # Streaming upload from an iterator through the multipart API (one part: S3, and SeaweedFS,
    # reject parts under 5 MiB except the last).
    result = obstore.put(store, path, _chunks(size), use_multipart=True)
    assert result["e_tag"]

    meta = obstore.head(store, path)
    assert meta["size"] == size
    assert meta["e_tag"].strip('"').endswith("-1"), meta  # S3 multipart ETag: md5-of-md5s-<parts>

    assert bytes(obstore.get(store, path).bytes()) == expected
    streamed = b"".join(bytes(c) for c in obstore.get(store, path).stream(min_chunk_size=64 * 1024))
    assert streamed == expected

    # Ranges, including one running past the end.
    assert bytes(obstore.get_range(store, path, start=0, end=10)) == expected[:10]
    assert bytes(obstore.get_range(store, path, start=MiB - 5, length=10)) == expected[MiB - 5 : MiB + 5]
    assert bytes(obstore.get_range(store, path, start=size - 7, end=size + 100)) == expected[-7:]

    # Presigned GET works without credentials; a tampered one does not.
    url = obstore.sign(store, "GET", path, timedelta(minutes=5))
    assert url.startswith(s3.endpoint + "/")
    with httpx.Client(timeout=30) as client:
        r = client.get(url)
        assert r.status_code == 200 and r.content == expected
        r = client.get(url, headers={"Range": "bytes=100-199"})
        assert r.status_code == 206 and r.content == expected[100:200]
        assert client.get(url.replace("X-Amz-Signature=", "X-Amz-Signature=0")).status_code == 403
        assert client.get(f"{s3.endpoint}/{s3.bucket}/{path}").status_code == 403  # anonymous

    obstore.delete(store, path)
    with pytest.raises(FileNotFoundError):
        obstore.head(store, path)


@needs_weed
def test_s3_multipart_upload_with_several_parts(store):
    import obstore

    size = 11 * MiB  # 5 + 5 + 1 MiB parts
    expected = b"".join(_chunks(size, seed=b"parts"))
    obstore.put(store, "big.bin", _chunks(size, seed=b"parts"), chunk_size=5 * MiB)
    meta = obstore.head(store, "big.bin")
    assert meta["size"] == size and meta["e_tag"].strip('"').endswith("-3"), meta
    at = 5 * MiB - 3  # across the first part boundary
    assert bytes(obstore.get_range(store, "big.bin", start=at, length=6)) == expected[at : at + 6]
    assert hashlib.sha256(bytes(obstore.get(store, "big.bin").bytes())).digest() == (hashlib.sha256(expected).digest())
    obstore.delete(store, "big.bin")


@needs_weed
def test_s3_wrong_secret_key_is_rejected(s3: SeaweedS3):
    import obstore
    from obstore.exceptions import PermissionDeniedError, UnauthenticatedError
    from obstore.store import S3Store

    obstore.put(S3Store(s3.bucket, config=s3.store_config(), client_options={"allow_http": True}), "k", b"x")
    bad = S3Store(
        s3.bucket,
        config={**s3.store_config(), "secret_access_key": "not-the-secret"},
        client_options={"allow_http": True},
    )
    with pytest.raises((PermissionDeniedError, UnauthenticatedError)):
        obstore.put(bad, "k2", b"x")
    with pytest.raises((PermissionDeniedError, UnauthenticatedError)):
        obstore.get(bad, "k").bytes()
    status, _ = s3.request("GET", f"/{s3.bucket}", secret_key="not-the-secret")
    assert status == 403


@needs_weed
def test_s3_env_configures_obstore(s3: SeaweedS3, monkeypatch: pytest.MonkeyPatch):
    import obstore
    from obstore.store import S3Store

    env = s3.env()
    assert env["AWS_ALLOW_HTTP"] == "true" and env["AWS_REGION"] == "us-east-1"
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    store = S3Store(s3.bucket)  # everything from the environment, as the gateway will do
    obstore.put(store, "from-env.txt", b"env ok")
    assert bytes(obstore.get(store, "from-env.txt").bytes()) == b"env ok"


@needs_weed
def test_s3_create_bucket_isolated(s3: SeaweedS3):
    import obstore
    from obstore.store import S3Store

    name = s3.create_bucket("isolated-bucket")
    assert s3.create_bucket(name) == name  # idempotent
    other = S3Store(name, config=s3.store_config(), client_options={"allow_http": True})
    obstore.put(other, "only-here", b"1")
    main = S3Store(s3.bucket, config=s3.store_config(), client_options={"allow_http": True})
    with pytest.raises(FileNotFoundError):
        obstore.head(main, "only-here")
    assert [m["path"] for batch in obstore.list(other) for m in batch] == ["only-here"]


# ---------------------------------------------------------------------------- no orphans
@needs_pg
def test_server_started_from_a_short_lived_thread_survives_it():
    """The parent-death signal is per forking thread: start() from a worker thread must not tie the
    server's life to that thread (asyncio.to_thread, executor threads)."""
    import threading

    box: list[PostgresServer] = []
    worker = threading.Thread(target=lambda: box.append(PostgresServer().start()))
    worker.start()
    worker.join()
    server = box[0]
    try:
        time.sleep(0.3)
        assert server.running, server.log_tail()
        assert server.psql("SELECT 1").strip() == "1"
    finally:
        server.stop()
    assert not server.running


@needs_pg
@needs_weed
def test_servers_die_with_a_killed_owner(tmp_path: Path):
    """SIGKILL the process that started both servers: the kernel takes the servers down too."""
    script = tmp_path / "owner.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import sys, time
            sys.path.insert(0, {str(Path(__file__).parents[1])!r})
            from infra.postgres import PostgresServer
            from infra.seaweed import SeaweedS3
            pg, s3 = PostgresServer().start(), SeaweedS3().start()
            print(pg._proc.pid, s3._proc.pid, pg._root, s3._root, flush=True)
            time.sleep(600)
            """
        )
    )
    owner = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        pg_pid, weed_pid, pg_root, weed_root = owner.stdout.readline().split()
    finally:
        owner.kill()
        owner.wait()

    def alive(pid: str) -> bool:
        try:
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except FileNotFoundError:
            return False

    deadline = time.monotonic() + 15
    while (alive(pg_pid) or alive(weed_pid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(pg_pid), "postmaster outlived its killed owner"
    assert not alive(weed_pid), "weed outlived its killed owner"
    # Their temp dirs stay behind; the next start() removes the dirs of dead owners (done here directly).
    assert Path(pg_root).exists() and Path(weed_root).exists()
    pg_mod._remove_stale_dirs(str(Path(pg_root).parent), "vidgate-pg-")
    weed_mod._remove_stale_dirs(str(Path(weed_root).parent), "vidgate-weed-")
    weed_mod._remove_stale_sockets()
    assert not Path(pg_root).exists() and not Path(weed_root).exists()
