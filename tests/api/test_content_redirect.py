"""``VIDGATE_CONTENT_REDIRECT``: on an object store, ``/content`` answers 307 to a presigned URL and the
store serves the bytes and ranges itself; on the local store the API keeps serving them. Real
gateways over HTTP (PostgreSQL + SeaweedFS S3, and SQLite + local files), a rendered MP4 decoded back."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import httpx
import pytest
from helpers import backends
from helpers.gateway import GatewayProcess, wait_status

BODY = {"model": "vidgate/procedural", "prompt": "a lantern", "duration": 1, "size": "160x90"}
REDIRECT = {"VIDGATE_CONTENT_REDIRECT": "true"}


@pytest.fixture(scope="module")
def s3_gateway(tmp_path_factory: pytest.TempPathFactory, pg_server: Any, s3_server: Any) -> Iterator[GatewayProcess]:
    gw = backends.start("postgres", tmp_path_factory.mktemp("redirect"), pg=pg_server, s3=s3_server, env=REDIRECT)
    yield gw
    gw.stop()


def completed(gw: GatewayProcess, api: httpx.Client) -> dict[str, Any]:
    job = api.post("/v1/videos", json=BODY).json()
    return wait_status(api, job["id"], {"completed"})


def frames(data: bytes) -> int:
    with av.open(io.BytesIO(data)) as container:
        return sum(1 for _ in container.decode(video=0))


def test_an_object_store_output_is_a_redirect_the_store_serves(s3_gateway: GatewayProcess) -> None:
    with s3_gateway.client(s3_gateway.new_key("redirect")) as api:
        job = completed(s3_gateway, api)
        url = f"/v1/videos/{job['id']}/content"
        r = api.get(url, headers={"Range": "bytes=0-99"})
        assert r.status_code == 307, r.text
        location = r.headers["location"]
        assert location.startswith("http://127.0.0.1:") and "X-Amz-Signature=" in location
        assert r.headers["cache-control"] == "private, no-store" and r.headers["etag"].startswith('"')
        sha = r.headers["x-content-sha256"]

        whole = httpx.get(location, timeout=30)  # the link works without the API key
        assert whole.status_code == 200 and hashlib.sha256(whole.content).hexdigest() == sha
        assert frames(whole.content) == 24
        followed = api.get(url, headers={"Range": "bytes=100-199"}, follow_redirects=True)
        assert followed.status_code == 206 and followed.content == whole.content[100:200]

        other = httpx.get(f"{s3_gateway.base_url}{url}", headers={"Authorization": f"Bearer {s3_gateway.new_key()}"})
        assert other.status_code == 404  # no link for another key's job


def test_the_local_store_keeps_serving(tmp_path: Path) -> None:
    gw = GatewayProcess(tmp_path, env=REDIRECT).start()
    try:
        with gw.client(gw.new_key("redirect")) as api:
            job = completed(gw, api)
            r = api.get(f"/v1/videos/{job['id']}/content", headers={"Range": "bytes=0-99"})
            assert r.status_code == 206 and len(r.content) == 100 and "location" not in r.headers
    finally:
        gw.stop()
