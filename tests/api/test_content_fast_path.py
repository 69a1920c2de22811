"""The ``/content`` range fast path (``api/content.py``), in process on a real gateway (SQLite, local
store, a rendered job): it answers a plain range itself with the bytes and headers the full stack
gives, leaves every other case to the full stack, and answers a throttled key itself."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from vidgate.gateway.api.content import ContentFastPath
from vidgate.gateway.app import create_app
from vidgate.gateway.billing import accounts
from vidgate.gateway.settings import load_settings

BODY = b'{"model":"vidgate/procedural","prompt":"a heron","duration":1,"size":"64x64"}'
Answer = tuple[int, dict[str, str], bytes]


class Job(msgspec.Struct):
    app: Any
    key: str
    owner: str
    id: str
    file: bytes


@pytest.fixture(scope="module")
async def job(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Job]:
    app = create_app(load_settings(env={}, data_dir=str(tmp_path_factory.mktemp("content"))), run_worker=True)
    async with app.router.lifespan_context(app):
        g = app.state.gateway
        key = await g.keys.create("t", 10_000_000)
        row, _ = await g.jobs.create(key.id, BODY, idempotency_key=None, request_id="req_t")
        for _ in range(1200):
            row = await g.jobs.row(key.id, row.id)
            if row.status == "completed":
                break
            await asyncio.sleep(0.05)
        assert row.status == "completed", row.error
        path = g.blobs.local_path(row.outputs[0].key)
        yield Job(app=app, key=key.key, owner=key.id, id=row.id, file=Path(path).read_bytes())


def scope(job: Job, path: str, headers: dict[str, str], query: bytes = b"") -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1:8080")] + [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8080),
        "extensions": {},
        "app": job.app,
        "state": {},
    }


async def call(app: Any, s: dict[str, Any]) -> Answer:
    status, head, chunks = 0, {}, []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status, head
        if message["type"] == "http.response.start":
            status = message["status"]
            head = {k.decode().lower(): v.decode() for k, v in message["headers"]}
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(s, receive, send)
    return status, head, b"".join(chunks)


class Recorder:
    """The inner app, counting what the fast path hands on."""

    def __init__(self, app: Any) -> None:
        self.app, self.calls = app, 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.calls += 1
        await self.app(scope, receive, send)


def auth(job: Job, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {job.key}", **extra}


async def test_a_plain_range_is_answered_beneath_the_framework_as_the_full_stack_answers_it(job: Job) -> None:
    inner = Recorder(job.app)
    fast = ContentFastPath(inner)
    path = f"/v1/videos/{job.id}/content"
    size = len(job.file)
    for first, last in ((0, 99), (size - 10, size - 1), (size // 3, size // 3 + 99)):
        headers = auth(job, Range=f"bytes={first}-{last}", **{"X-Request-Id": "req-range-1"})
        status, head, body = await call(fast, scope(job, path, headers))
        # ``?index=0`` is the same resource, which the fast path leaves to the full stack.
        f_status, f_head, f_body = await call(fast, scope(job, path, headers, b"index=0"))
        assert (status, body) == (f_status, f_body) == (206, job.file[first : last + 1])
        assert head == f_head
        assert head["content-range"] == f"bytes {first}-{last}/{size}"
        assert head["etag"] == f'"{hashlib.sha256(job.file).hexdigest()}"'
        assert head["x-request-id"] == "req-range-1"
    assert inner.calls == 3  # the three ``?index=0`` requests only


@pytest.mark.parametrize(
    ("headers", "query", "expected"),
    [
        ({"Range": "bytes=0-9", "Authorization": "Bearer vg_wrong"}, b"", 401),
        ({"Range": "bytes=999999999-"}, b"", 416),
        ({"Range": "bytes=0-9,20-29"}, b"", 416),  # one range at a time
        ({"Range": "bytes=0-9", "If-Range": '"another"'}, b"", 200),
        ({}, b"", 200),
        ({"Range": "bytes=0-9"}, b"variant=thumbnail", 206),
    ],
)
async def test_every_other_case_is_the_full_stacks(
    job: Job, headers: dict[str, str], query: bytes, expected: int
) -> None:
    inner = Recorder(job.app)
    status, _, body = await call(
        ContentFastPath(inner), scope(job, f"/v1/videos/{job.id}/content", {**auth(job), **headers}, query)
    )
    assert status == expected and inner.calls == 1
    if status >= 400:
        assert msgspec.json.decode(body)["error"]["code"] in (
            "unauthorized",
            "invalid_api_key",
            "range_not_satisfiable",
        )
    if status == 200:
        assert body == job.file


async def test_an_unknown_job_and_a_job_of_another_owner_are_a_404(job: Job) -> None:
    g = job.app.state.gateway
    other = await g.keys.create("other", 10_000_000)
    for path, key in (("/v1/videos/vid_0unknown/content", job.key), (f"/v1/videos/{job.id}/content", other.key)):
        status, _, body = await call(
            ContentFastPath(job.app), scope(job, path, {"Authorization": f"Bearer {key}", "Range": "bytes=0-9"})
        )
        assert status == 404 and msgspec.json.decode(body)["error"]["code"] == "not_found"


async def test_a_throttled_key_is_refused_once_per_request(job: Job) -> None:
    g = job.app.state.gateway
    key = await g.keys.create("throttled", 10_000_000)
    await accounts.set_limits(g.db, key.id, {"rate_per_second": 1, "rate_burst": 2})
    # A job of this key's own owner, whose content it may read.
    row, _ = await g.jobs.create(key.id, BODY, idempotency_key=None, request_id="req_t")
    for _ in range(1200):
        row = await g.jobs.row(key.id, row.id)
        if row.status == "completed":
            break
        await asyncio.sleep(0.05)
    inner = Recorder(job.app)
    fast = ContentFastPath(inner)
    headers = {"Authorization": f"Bearer {key.key}", "Range": "bytes=0-9"}
    started, answers = time.monotonic(), []
    while len(answers) < 20 and not any(a[0] == 429 for a in answers):
        answers.append(await call(fast, scope(job, f"/v1/videos/{row.id}/content", headers)))
    elapsed = time.monotonic() - started
    # A burst of two (and one more for each second these took): then one is refused here, in the API's
    # envelope, and never reaches the full stack.
    codes = [a[0] for a in answers]
    assert codes[:2] == [206, 206] and codes[-1] == 429 and set(codes) == {206, 429} and inner.calls == 0
    assert codes.count(206) <= 2 + elapsed + 1, (codes, elapsed)
    assert msgspec.json.decode(answers[-1][2])["error"]["code"] == "rate_limited"
    assert int(answers[-1][1]["retry-after"]) >= 1
