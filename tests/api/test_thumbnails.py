"""Every stored output's poster frame and spritesheet: linked in the job, served as content variants,
signed like the video, served to the unmodified ``openai`` client, and removed with the job."""

from __future__ import annotations

import hashlib
import io
import sqlite3
import time
import uuid
import warnings

import av
import httpx
import msgspec
import openai
import pytest
from helpers.backends import blob_keys, rows
from helpers.gateway import GatewayProcess, wait_status

from vidgate.gateway.jobs.records import StoredOutput

pytestmark = [pytest.mark.both_backends, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

MODEL = "vidgate/procedural"


def _create(api: httpx.Client, **extra: object) -> str:
    body = {"model": MODEL, "prompt": f"a heron at dawn {uuid.uuid4().hex[:8]}", "duration": 1, "size": "160x90"}
    r = api.post("/v1/videos", json={**body, **extra})
    assert r.status_code == 202, r.text
    return r.json()["id"]


def _stored(gw: GatewayProcess, job_id: str) -> tuple[StoredOutput, ...]:
    [(outputs,)] = rows(gw, "SELECT outputs FROM jobs WHERE id = ?", job_id)
    return msgspec.json.decode(outputs, type=tuple[StoredOutput, ...])


def _picture(data: bytes) -> tuple[str, int, int]:
    with av.open(io.BytesIO(data)) as c:
        frame = next(c.decode(video=0))
        return c.format.name, frame.width, frame.height


def _eventually(check: object, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_poster_and_spritesheet_are_linked_served_and_removed(gateway: GatewayProcess, api: httpx.Client) -> None:
    job_id = _create(api)
    done = wait_status(api, job_id, {"completed"})
    base = f"{str(api.base_url).rstrip('/')}/v1/videos/{job_id}"
    out = done["outputs"][0]
    assert out["thumbnail_url"] == f"{base}/content?index=0&variant=thumbnail"
    assert out["spritesheet_url"] == f"{base}/content?index=0&variant=spritesheet"
    assert done["thumbnail_url"] == out["thumbnail_url"] and done["spritesheet_url"] == out["spritesheet_url"]

    [stored] = _stored(gateway, job_id)
    thumb, sheet = stored.thumbnail, stored.spritesheet
    assert isinstance(thumb, msgspec.Struct) and isinstance(sheet, msgspec.Struct)

    r = api.get(out["thumbnail_url"])
    assert r.status_code == 200 and r.headers["content-type"] == "image/webp"
    assert r.headers["etag"] == f'"{thumb.sha256}"' and "max-age" in r.headers["cache-control"]
    assert hashlib.sha256(r.content).hexdigest() == thumb.sha256 and len(r.content) == thumb.bytes
    assert _picture(r.content) == ("webp_pipe", 160, 90) == ("webp_pipe", thumb.width, thumb.height)
    assert api.get(out["thumbnail_url"], headers={"Range": "bytes=0-9"}).content == r.content[:10]

    r = api.get(out["spritesheet_url"])
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert hashlib.sha256(r.content).hexdigest() == sheet.sha256 == r.headers["x-content-sha256"]
    _, width, height = _picture(r.content)
    assert (width, height) == (sheet.width, sheet.height)
    assert sheet.tiles == min(100, stored.frames) and sheet.tile_width == 160 and sheet.tile_height == 90
    assert sheet.columns == min(10, sheet.tiles) and sheet.rows == -(-sheet.tiles // sheet.columns)
    assert (width, height) == (sheet.columns * 160, sheet.rows * 90)

    video = api.get(done["content_url"])  # today's behaviour, with or without variant=video
    assert video.headers["content-type"] == "video/mp4"
    assert api.get(f"{base}/content?variant=video").content == video.content

    bad = api.get(f"{base}/content?variant=poster")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "validation_error"
    assert bad.json()["error"]["param"] == "variant"

    keys = [stored.key, thumb.key, sheet.key]
    assert blob_keys(gateway, f"videos/{job_id}") == sorted(keys)
    assert api.delete(f"/v1/videos/{job_id}").status_code == 200
    _eventually(lambda: blob_keys(gateway, f"videos/{job_id}") == [], "the job's objects to go")


def test_signed_links_take_the_variant(gateway: GatewayProcess, api: httpx.Client) -> None:
    job_id = _create(api, output={"access": "signed_url"})
    done = wait_status(api, job_id, {"completed"})
    out = done["outputs"][0]
    assert "content_url" not in out and "variant=thumbnail" in out["thumbnail_url"]
    [stored] = _stored(gateway, job_id)
    if gateway.env.get("VIDGATE_BLOB_URL"):  # S3: the view's links are still the gateway's own, signed
        assert out["thumbnail_url"].startswith(str(api.base_url).rstrip("/"))
    r = httpx.get(out["thumbnail_url"], timeout=30)
    assert r.status_code == 200 and r.headers["content-type"] == "image/webp"
    assert hashlib.sha256(r.content).hexdigest() == stored.thumbnail.sha256  # type: ignore[union-attr]
    forged = out["thumbnail_url"].replace("variant=thumbnail", "variant=spritesheet")
    assert httpx.get(forged, timeout=30).status_code == 403
    dropped = out["thumbnail_url"].replace("&variant=thumbnail", "")
    assert httpx.get(dropped, timeout=30).status_code == 403

    link = api.post(f"/v1/videos/{job_id}/download_url", json={"variant": "spritesheet", "ttl_seconds": 120})
    assert link.status_code == 200, link.text
    r = httpx.get(link.json()["url"], timeout=30)  # on S3 the store's own presigned URL
    assert r.status_code == 200
    if not gateway.env.get("VIDGATE_BLOB_URL"):
        assert r.headers["content-type"] == "image/jpeg"
    assert hashlib.sha256(r.content).hexdigest() == stored.spritesheet.sha256  # type: ignore[union-attr]


def test_openai_mount_serves_the_same_objects(gateway: GatewayProcess, api: httpx.Client, key: str) -> None:
    client = openai.OpenAI(base_url=f"{gateway.base_url}/openai/v1", api_key=key, max_retries=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        video = client.videos.create(
            model=MODEL, prompt=f"a lantern {uuid.uuid4().hex[:8]}", seconds="1", size="160x90"
        )
        wait_status(api, video.id, {"completed"})
        [stored] = _stored(gateway, video.id)
        thumb = client.videos.download_content(video.id, variant="thumbnail")
        sheet = client.videos.download_content(video.id, variant="spritesheet")
    client.close()
    assert thumb.response.headers["content-type"] == "image/webp"
    assert hashlib.sha256(thumb.content).hexdigest() == stored.thumbnail.sha256  # type: ignore[union-attr]
    assert _picture(thumb.content)[1:] == (160, 90)
    assert sheet.response.headers["content-type"] == "image/jpeg"
    assert hashlib.sha256(sheet.content).hexdigest() == stored.spritesheet.sha256  # type: ignore[union-attr]


def test_an_output_without_images_is_a_clear_404(gateway: GatewayProcess, api: httpx.Client) -> None:
    if gateway.env.get("VIDGATE_DATABASE_URL"):
        pytest.skip("rewrites a row the way an older release stored it: the SQLite file is at hand")
    job_id = _create(api)
    done = wait_status(api, job_id, {"completed"})
    [stored] = _stored(gateway, job_id)
    older = msgspec.structs.replace(stored, thumbnail=msgspec.UNSET, spritesheet=msgspec.UNSET)
    conn = sqlite3.connect(gateway.data_dir / "vidgate.db")
    with conn:
        conn.execute(
            "UPDATE jobs SET outputs = ?, version = version + 1 WHERE id = ?",
            (msgspec.json.encode([older]).decode(), job_id),
        )
    conn.close()
    again = api.get(f"/v1/videos/{job_id}").json()
    assert "thumbnail_url" not in again and "thumbnail_url" not in again["outputs"][0]
    assert again["content_url"] == done["content_url"]
    r = api.get(f"{done['content_url']}?variant=thumbnail")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    assert "has no thumbnail" in r.json()["error"]["message"]
