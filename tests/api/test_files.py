"""Uploads over real HTTP, on SQLite + local files and on PostgreSQL + S3: stored, probed, owner-scoped,
usable as an input reference, capped, type-checked, expired by the worker's sweep; and the SDK's methods."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest
from helpers import backends
from helpers.backends import blob_keys, rows
from helpers.envelope import envelope
from helpers.gateway import GatewayProcess, wait_status
from helpers.media import png_bytes

from vidgate.client import AsyncClient, Client
from vidgate.errors import NotFoundError

pytestmark = pytest.mark.both_backends

MODEL = "vidgate/procedural"
RENDER = {"model": MODEL, "prompt": "a lighthouse at dusk", "duration": 1, "size": "128x72"}
CAP = 256 << 10


def upload(api: httpx.Client, content: bytes, name: str = "f.bin", **data: str) -> httpx.Response:
    return api.post("/v1/files", files={"file": (name, content, "application/octet-stream")}, data=data or None)


def rendered_mp4(api: httpx.Client) -> bytes:
    job = api.post("/v1/videos", json=RENDER)
    assert job.status_code == 202, job.text
    done = wait_status(api, job.json()["id"], {"completed", "failed"})
    assert done["status"] == "completed", done
    return api.get(f"/v1/videos/{done['id']}/content").content


def test_png_upload_is_probed_and_starts_a_video(gateway: GatewayProcess, api: httpx.Client) -> None:
    png = png_bytes((200, 40, 40), 128, 72)
    r = upload(api, png, "frame.png", purpose="first frame")
    assert r.status_code == 201, r.text
    f = r.json()
    assert f["id"].startswith("file_") and f["object"] == "file"
    assert (f["mime_type"], f["kind"], f["width"], f["height"], f["bytes"]) == ("image/png", "image", 128, 72, len(png))
    assert f["duration_seconds"] is None and f["purpose"] == "first frame"
    assert f["expires_at"] - f["created_at"] == 86_400
    assert len(f["sha256"]) == 64
    assert api.get(f"/v1/files/{f['id']}").json() == f
    assert f["id"] in [x["id"] for x in api.get("/v1/files").json()["data"]]
    ref = {"type": "image", "file_id": f["id"], "role": "first_frame"}
    job = api.post("/v1/videos", json={**RENDER, "input_references": [ref]})
    assert job.status_code == 202, job.text
    done = wait_status(api, job.json()["id"], {"completed", "failed"})
    assert done["status"] == "completed", done
    # ``asset_id`` may name an upload as well
    ref = {"type": "image", "asset_id": f["id"], "role": "first_frame"}
    assert api.post("/v1/videos", json={**RENDER, "input_references": [ref]}).status_code == 202


def test_mp4_upload_is_probed(gateway: GatewayProcess, api: httpx.Client) -> None:
    mp4 = rendered_mp4(api)
    f = upload(api, mp4, "clip.mp4").json()
    assert (f["kind"], f["mime_type"], f["width"], f["height"]) == ("video", "video/mp4", 128, 72)
    assert f["duration_seconds"] == pytest.approx(1.0, abs=0.2)
    keys = blob_keys(gateway, f"uploads/{f['id']}")
    assert len(keys) == 1 and keys[0].endswith(".mp4")
    # a video is not an image
    ref = {"type": "image", "file_id": f["id"], "role": "first_frame"}
    err = envelope(api.post("/v1/videos", json={**RENDER, "input_references": [ref]}), 400, "validation_error")
    assert err["param"] == "input_references[0].file_id" and "is a video, not an image" in err["message"]
    assert api.delete(f"/v1/files/{f['id']}").json() == {"id": f["id"], "object": "file", "deleted": True}
    envelope(api.get(f"/v1/files/{f['id']}"), 404, "not_found")
    deadline = time.monotonic() + 30
    while blob_keys(gateway, f"uploads/{f['id']}") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert blob_keys(gateway, f"uploads/{f['id']}") == []


def test_another_owner_cannot_see_or_use_a_file(gateway: GatewayProcess, api: httpx.Client) -> None:
    f = upload(api, png_bytes((1, 2, 3))).json()
    ref = {"type": "image", "file_id": f["id"], "role": "first_frame"}
    unknown = {**ref, "file_id": "file_01nosuchfile"}
    with gateway.client(gateway.new_key()) as other:
        envelope(other.get(f"/v1/files/{f['id']}"), 404, "not_found")
        envelope(other.delete(f"/v1/files/{f['id']}"), 404, "not_found")
        assert f["id"] not in [x["id"] for x in other.get("/v1/files").json()["data"]]
        theirs = envelope(other.post("/v1/videos", json={**RENDER, "input_references": [ref]}), 400, "validation_error")
        nobody = envelope(
            other.post("/v1/videos", json={**RENDER, "input_references": [unknown]}), 400, "validation_error"
        )
    assert theirs["message"].replace(f["id"], "?") == nobody["message"].replace(unknown["file_id"], "?")
    assert api.get(f"/v1/files/{f['id']}").status_code == 200  # still the owner's


def test_wrong_types_are_refused(gateway: GatewayProcess, api: httpx.Client) -> None:
    envelope(upload(api, b"just some words, not a picture\n" * 10, "notes.txt"), 415, "unsupported_media_type")
    envelope(api.post("/v1/files", json={"file": "x"}), 415, "unsupported_media_type")
    r = api.post("/v1/files", files={"other": ("x", b"abc")})
    assert envelope(r, 400, "validation_error")["param"] == "file"
    envelope(api.get("/v1/files", params={"limit": 0}), 400, "validation_error")


def test_listing_pages(gateway: GatewayProcess) -> None:
    with gateway.client(gateway.new_key()) as api:
        ids = [upload(api, png_bytes((i, i, i), 16, 16)).json()["id"] for i in range(3)]
        first = api.get("/v1/files", params={"limit": 2}).json()
        assert [x["id"] for x in first["data"]] == ids[::-1][:2] and first["has_more"]
        rest = api.get("/v1/files", params={"limit": 2, "after": first["last_id"]}).json()
        assert [x["id"] for x in rest["data"]] == [ids[0]] and not rest["has_more"]
        asc = api.get("/v1/files", params={"order": "asc"}).json()
        assert [x["id"] for x in asc["data"]] == ids


def test_sdk_methods(gateway: GatewayProcess, key: str, tmp_path: Path) -> None:
    path = tmp_path / "frame.png"
    path.write_bytes(png_bytes((9, 90, 180), 64, 48))
    with Client(api_key=key, base_url=gateway.base_url) as client:
        made = client.files.create(path, purpose="frames")
        assert (made.kind, made.width, made.height, made.purpose) == ("image", 64, 48, "frames")
        assert client.files.get(made.id) == made
        assert made.id in [f.id for f in client.files.list(limit=100).data]
        from_bytes = client.files.create(path.read_bytes())
        assert from_bytes.sha256 == made.sha256 and from_bytes.id != made.id
        assert client.files.delete(made.id).deleted
        with pytest.raises(NotFoundError):
            client.files.get(made.id)

    async def run() -> None:
        async with AsyncClient(api_key=key, base_url=gateway.base_url) as client:
            made = await client.files.create(path)
            assert (await client.files.get(made.id)).id == made.id
            assert made.id in [f.id for f in (await client.files.list()).data]
            assert (await client.files.delete(made.id)).deleted

    asyncio.run(run())


@pytest.fixture(scope="module")
def small_gateway(backend: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """A gateway with a small upload cap and uploads that expire within seconds."""
    extra = {}
    if backend == "postgres":
        extra = {"pg": request.getfixturevalue("pg_server"), "s3": request.getfixturevalue("s3_server")}
    env = {
        "VIDGATE_UPLOAD_MAX_BYTES": str(CAP),
        "VIDGATE_UPLOAD_TTL_SECONDS": "2",
        "VIDGATE_RETENTION_DAYS": "0.00002",  # the retention sweep every second or so
        "VIDGATE_DELETION_RETRY_SECONDS": "0.5",
    }
    proc = backends.start(backend, tmp_path_factory.mktemp(f"files-{backend}"), env=env, **extra)
    yield proc
    proc.stop()


def test_oversize_is_413_and_leaves_nothing(small_gateway: GatewayProcess) -> None:
    gw = small_gateway
    with gw.client(gw.new_key()) as api:
        big = png_bytes((5, 5, 5), 16, 16) + b"\0" * (CAP + 1)
        envelope(upload(api, big, "big.png"), 413, "payload_too_large")

        def chunks():  # no Content-Length: refused as the bytes go past the cap
            yield from (big[i : i + 65536] for i in range(0, len(big), 65536))

        boundary = "vidgateboundary"
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="b"\r\n\r\n'.encode()

        def body():
            yield head
            yield from chunks()
            yield f"\r\n--{boundary}--\r\n".encode()

        r = api.post("/v1/files", content=body(), headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
        envelope(r, 413, "payload_too_large")
    assert blob_keys(gw, "uploads") == []
    assert rows(gw, "SELECT count(*) FROM files") == [(0,)]
    assert list((gw.data_dir / "tmp" / "uploads").glob("*")) == []


def test_expiry_removes_the_object_and_the_row(small_gateway: GatewayProcess) -> None:
    gw = small_gateway
    with gw.client(gw.new_key()) as api:
        f = upload(api, png_bytes((7, 7, 7), 16, 16)).json()
        assert blob_keys(gw, f"uploads/{f['id']}")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if not rows(gw, "SELECT id FROM files WHERE id = ?", f["id"]) and not blob_keys(gw, f"uploads/{f['id']}"):
                break
            time.sleep(0.3)
        assert rows(gw, "SELECT id FROM files WHERE id = ?", f["id"]) == []
        assert blob_keys(gw, f"uploads/{f['id']}") == []
        envelope(api.get(f"/v1/files/{f['id']}"), 404, "not_found")
