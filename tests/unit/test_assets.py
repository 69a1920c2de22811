"""An output of one's own completed job can be named as an input (``asset_id``): found with one indexed
read, never another owner's, read by the worker from the store, gone with its job. In process, on
each backend (local files for the store), with a catalogue whose second model takes a video
``source`` reference; and the migration copies in the assets of jobs completed before it."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import os
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from vidgate.errors import ValidationError
from vidgate.gateway.catalog import catalog as shipped
from vidgate.gateway.catalog.catalog import Catalog, load_catalog
from vidgate.gateway.jobs import assets
from vidgate.gateway.jobs.records import JobRecord
from vidgate.gateway.services import Gateway
from vidgate.gateway.settings import load_settings
from vidgate.gateway.storage.migrate import migrate
from vidgate.gateway.worker.jobspec import fetch_references

SOURCE_MODEL = """
[[models]]
id = "test/restyle"
name = "Restyle (test)"
durations = [1, 4]
duration_range = true
default_duration = 1
resolutions = ["360p"]
aspect_ratios = ["16:9"]
default_resolution = "360p"
default_aspect_ratio = "16:9"
video_reference_roles = ["source"]
operations = ["edit"]
expected_seconds = 2
providers = [{ name = "vidgate", model = "procedural-v1", media = ["video"] }]
"""
SMALL = {"duration": 1, "size": "128x72"}
BACKENDS = [b for b in os.environ.get("VIDGATE_TEST_BACKENDS", "sqlite,postgres").split(",") if b]
_names = itertools.count()


def catalog(tmp_path: Path) -> Catalog:
    """The built-in model and one that takes a video source, from a catalogue file of one's own."""
    path = tmp_path / "catalog.toml"
    path.write_text((Path(shipped.__file__).parent / "vidgate.toml").read_text() + SOURCE_MODEL)
    return load_catalog(path)


def body(**fields: Any) -> bytes:
    return msgspec.json.encode({"model": "vidgate/procedural", "prompt": "a lighthouse", **SMALL, **fields})


def source(asset_id: str) -> bytes:
    ref = {"type": "video", "asset_id": asset_id, "role": "source"}
    return body(model="test/restyle", input_references=[ref])


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, migrated database of each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'vidgate.db'}"
    dsn: str = request.getfixturevalue("pg_server").create_database(f"assets_{os.getpid()}_{next(_names)}")
    migrate(dsn)
    return dsn


@pytest.fixture
async def gw(tmp_path: Path, database_url: str) -> AsyncIterator[Gateway]:
    settings = load_settings(env={}, data_dir=str(tmp_path), database_url=database_url, deadline_override_seconds=60)
    gw = await Gateway.open(settings, catalog=catalog(tmp_path))
    gw.start_worker()
    yield gw
    await gw.close()


async def owner(gw: Gateway) -> str:
    return (await gw.keys.create("test", 10_000_000)).id


async def finished(gw: Gateway, who: str, body_: bytes) -> JobRecord:
    job, _ = await gw.jobs.create(who, body_, idempotency_key=None, request_id="req_test")
    for _ in range(600):
        job = await gw.jobs.row(who, job.id)
        if job.status in ("completed", "failed", "cancelled", "expired"):
            return job
        await asyncio.sleep(0.05)
    raise AssertionError(f"{job.id} is still {job.status}")


async def test_an_own_output_is_an_input_read_from_the_store(gw: Gateway) -> None:
    alice, bob = await owner(gw), await owner(gw)
    made = await finished(gw, alice, body())
    assert made.status == "completed", made.error
    out = made.outputs[0]

    found = await assets.find(gw.db, alice, out.asset_id)
    assert found is not None and (found.job_id, found.key, found.kind) == (made.id, out.key, "video")
    assert await assets.find(gw.db, bob, out.asset_id) is None

    with pytest.raises(ValidationError) as foreign:
        await gw.jobs.create(bob, source(out.asset_id), idempotency_key=None, request_id="req_test")
    with pytest.raises(ValidationError) as unknown:
        await gw.jobs.create(bob, source("ast_01UNKNOWN"), idempotency_key=None, request_id="req_test")
    # The same words for another owner's asset and for none at all: a refusal never tells which.
    assert str(foreign.value).replace(out.asset_id, "?") == str(unknown.value).replace("ast_01UNKNOWN", "?")
    assert foreign.value.param == "input_references[0].asset_id"

    wrong_kind = body(input_references=[{"type": "image", "asset_id": out.asset_id, "role": "first_frame"}])
    with pytest.raises(ValidationError, match="is a video, not an image"):
        await gw.jobs.create(alice, wrong_kind, idempotency_key=None, request_id="req_test")

    restyled = await finished(gw, alice, source(out.asset_id))
    assert restyled.status == "completed", restyled.error
    assert gw.worker is not None
    reader = assets.AssetReader(gw.db, gw.blobs, alice)
    refs = await fetch_references(gw.worker.ctx.http, restyled.spec.references, gw.settings, assets=reader)
    assert [(r.kind, r.role, r.asset, r.mime_type) for r in refs] == [("video", "source", out.asset_id, "video/mp4")]
    assert hashlib.sha256(refs[0].data).hexdigest() == out.sha256

    await gw.jobs.delete(alice, made.id)
    assert await assets.find(gw.db, alice, out.asset_id) is None
    with pytest.raises(ValidationError):
        await gw.jobs.create(alice, source(out.asset_id), idempotency_key=None, request_id="req_test")


async def test_an_asset_whose_job_never_completed_with_it_resolves_to_nothing(gw: Gateway) -> None:
    alice = await owner(gw)
    made = await finished(gw, alice, body())
    stray = msgspec.structs.replace(made.outputs[0], asset_id="ast_01STRAY")
    await assets.record(gw.db, made.id, [stray])  # a store whose completion never happened
    assert await assets.find(gw.db, alice, "ast_01STRAY") is None
    assert await assets.find(gw.db, alice, made.outputs[0].asset_id) is not None


OUTPUTS = (
    '[{"index":0,"asset_id":"ast_A","key":"videos/vid_1/0-x.mp4","mime_type":"video/mp4","bytes":10,'
    '"sha256":"ab","width":2,"height":2,"duration_seconds":1.0,"frames":24,"has_audio":false}]'
)
INSERT_JOB = (
    "INSERT INTO jobs (id, owner_id, model, status, spec, created_at, updated_at, completed_at, deadline_at, "
    "expected_seconds, outputs) VALUES ('{id}', 'own', 'm', '{status}', '{{}}', 1, 2, 3, 4, 5, '{outputs}')"
)
ASSETS = "SELECT id, owner_id, job_id, output_index, key, mime_type, sha256, bytes FROM assets"
BACKFILLED = ("ast_vid_1", "own", "vid_1", 0, "videos/vid_1/0-x.mp4", "video/mp4", "ab", 10)


def old_jobs() -> list[str]:
    """A completed job and a failed one, each with an output, as written before the assets table."""
    return [
        INSERT_JOB.format(id=job_id, status=status, outputs=OUTPUTS.replace("ast_A", f"ast_{job_id}"))
        for job_id, status in (("vid_1", "completed"), ("vid_2", "failed"))
    ]


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_migration_copies_in_the_outputs_of_completed_jobs(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'db.sqlite'}"
        migrate(url, "0008")
        conn = sqlite3.connect(tmp_path / "db.sqlite")
        for sql in old_jobs():
            conn.execute(sql)
        conn.commit()
        migrate(url)
        rows = [tuple(r) for r in conn.execute(ASSETS).fetchall()]
        conn.close()
    else:
        pg = request.getfixturevalue("pg_server")
        name = f"assets_{os.getpid()}_{next(_names)}"
        dsn = pg.create_database(name)
        migrate(dsn, "0008")
        pg.psql(";".join(old_jobs()), name)
        migrate(dsn)
        rows = [tuple(line.split("|")) for line in pg.psql(ASSETS, name).splitlines() if line]
        rows = [(*r[:3], int(r[3]), *r[4:7], int(r[7])) for r in rows]
    assert rows == [BACKFILLED]
