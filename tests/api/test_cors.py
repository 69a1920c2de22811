"""CORS for web pages on other origins: off unless ``VIDGATE_CORS_ORIGINS`` names them, and then on
every answer, the poll's fast path and the error envelopes included."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from vidgate.gateway.app import create_app
from vidgate.gateway.settings import load_settings

ADMIN = "vg_admin_cors_test_key"
PAGE = "http://127.0.0.1:5173"
JOB = {"model": "vidgate/procedural", "prompt": "a slow pan over hills", "duration": 1, "size": "160x90"}
SDK_HEADERS = "authorization,content-type,idempotency-key,x-request-id"


async def client_for(tmp_path: Path, origins: str | None) -> AsyncIterator[httpx.AsyncClient]:
    """The whole app in process, with a fresh key, and CORS set to ``origins`` (None: the default)."""
    env = {} if origins is None else {"VIDGATE_CORS_ORIGINS": origins}
    app = create_app(load_settings(env=env, data_dir=tmp_path, admin_key=ADMIN), run_worker=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8080") as c:
            r = await c.post("/v1/admin/keys", json={"name": "cors"}, headers={"Authorization": f"Bearer {ADMIN}"})
            c.headers["Authorization"] = f"Bearer {r.json()['key']}"
            yield c


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async for c in client_for(tmp_path, f"{PAGE}, https://app.example/"):
        yield c


@pytest.fixture
async def default_api(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async for c in client_for(tmp_path, None):
        yield c


def cors_headers(r: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in r.headers.multi_items() if k.startswith("access-control-") or k == "vary"}


def exposed(r: httpx.Response) -> set[str]:
    return {h.strip().lower() for h in r.headers["access-control-expose-headers"].split(",")}


async def test_a_preflight_allows_what_the_sdk_sends_from_a_listed_origin(api: httpx.AsyncClient) -> None:
    ask = {"Origin": PAGE, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": SDK_HEADERS}
    r = await api.options("/v1/videos", headers=ask)
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == PAGE and "origin" in r.headers["vary"].lower()
    assert "POST" in r.headers["access-control-allow-methods"] and int(r.headers["access-control-max-age"]) > 0
    allowed = {h.strip().lower() for h in r.headers["access-control-allow-headers"].split(",")}
    assert {"authorization", "content-type", "idempotency-key", "x-request-id", "range", "if-range"} <= allowed
    trailing_slash_listed = await api.options("/v1/videos", headers={**ask, "Origin": "https://app.example"})
    assert trailing_slash_listed.headers["access-control-allow-origin"] == "https://app.example"
    stranger = await api.options("/v1/videos", headers={**ask, "Origin": "https://evil.example"})
    assert stranger.status_code == 400 and "access-control-allow-origin" not in stranger.headers
    odd_header = await api.options("/v1/videos", headers={**ask, "Access-Control-Request-Headers": "x-unknown"})
    assert odd_header.status_code == 400


async def test_answers_to_a_listed_origin_expose_the_headers_the_sdk_reads(api: httpx.AsyncClient) -> None:
    created = await api.post("/v1/videos", json=JOB, headers={"Origin": PAGE})
    assert created.status_code == 202
    assert created.headers["access-control-allow-origin"] == PAGE
    assert {"x-request-id", "retry-after", "etag", "content-range", "location"} <= exposed(created)
    refused = await api.get("/v1/videos", headers={"Origin": PAGE, "Authorization": "Bearer vg_not_a_key"})
    assert refused.status_code == 401 and refused.headers["access-control-allow-origin"] == PAGE
    assert refused.json()["error"]["request_id"] == refused.headers["x-request-id"]
    stranger = await api.get("/v1/videos", headers={"Origin": "https://evil.example"})
    assert stranger.status_code == 200 and "access-control-allow-origin" not in stranger.headers


async def test_the_polls_fast_path_carries_them_and_answers_the_same(api: httpx.AsyncClient) -> None:
    job = (await api.post("/v1/videos", json=JOB)).json()
    url = f"/v1/videos/{job['id']}"
    plain = await api.get(url)
    cross = await api.get(url, headers={"Origin": PAGE})
    assert cross.status_code == plain.status_code == 200
    assert cross.headers["access-control-allow-origin"] == PAGE and "x-request-id" in exposed(cross)
    assert cross.json()["id"] == plain.json()["id"] and cross.headers["x-request-id"].startswith("req_")
    alias = await api.get(f"/v1/video/generations/{job['id']}", headers={"Origin": PAGE})
    assert alias.status_code == 200 and alias.headers["access-control-allow-origin"] == PAGE
    missing = await api.get("/v1/videos/vid_00000000000000000000000000", headers={"Origin": PAGE})
    assert missing.status_code == 404 and missing.headers["access-control-allow-origin"] == PAGE
    listed = await api.get("/v1/videos", headers={"Origin": PAGE})  # through the middleware itself
    for origin in (PAGE, "https://evil.example", None):
        asked = {"Origin": origin} if origin else {}
        fast, full = await api.get(url, headers=asked), await api.get("/v1/videos", headers=asked)
        assert cors_headers(fast) == cors_headers(full), origin
    assert cors_headers(listed)["vary"] == "Origin"


async def test_any_origin_with_a_star(tmp_path: Path) -> None:
    async for api in client_for(tmp_path, "*"):
        job = await api.post("/v1/videos", json=JOB, headers={"Origin": "https://anywhere.example"})
        assert job.headers["access-control-allow-origin"] == "*"
        polled = await api.get(f"/v1/videos/{job.json()['id']}", headers={"Origin": "https://x.example"})
        assert polled.headers["access-control-allow-origin"] == "*"
        ask = {"Origin": "https://x.example", "Access-Control-Request-Method": "DELETE"}
        assert (await api.options("/v1/videos/vid_1", headers=ask)).status_code == 200


async def test_no_cors_headers_by_default(default_api: httpx.AsyncClient) -> None:
    job = await default_api.post("/v1/videos", json=JOB, headers={"Origin": PAGE})
    polled = await default_api.get(f"/v1/videos/{job.json()['id']}", headers={"Origin": PAGE})
    ask = {"Origin": PAGE, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": SDK_HEADERS}
    preflight = await default_api.options("/v1/videos", headers=ask)
    assert job.status_code == 202 and polled.status_code == 200 and preflight.status_code == 405
    for r in (job, polled, preflight):
        assert not [h for h in r.headers if h.lower().startswith("access-control-")], r.headers
        assert "origin" not in r.headers.get("vary", "").lower()
