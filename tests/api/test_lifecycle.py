"""The whole /v1/videos lifecycle against a running gateway on the built-in provider."""

from __future__ import annotations

import hashlib
import io
import time
from decimal import Decimal
from urllib.parse import parse_qs, urlencode, urlparse

import av
import httpx
import numpy as np
import pytest
from helpers.backends import blob_keys
from helpers.gateway import GatewayProcess, wait_status
from helpers.media import png_data_url

MODEL = "vidgate/procedural"
pytestmark = pytest.mark.both_backends


def create(api: httpx.Client, **fields) -> dict:
    r = api.post("/v1/videos", json={"model": MODEL, "prompt": "a lighthouse at dusk", **fields})
    assert r.status_code == 202, r.text
    return r.json()


def decode(data: bytes) -> dict:
    with av.open(io.BytesIO(data)) as c:
        v = c.streams.video[0]
        frames = sum(1 for _ in c.decode(v))
        return {
            "width": v.codec_context.width,
            "height": v.codec_context.height,
            "frames": frames,
            "codec": v.codec_context.name,
            "pix_fmt": v.codec_context.pix_fmt,
            "duration": float(c.duration / 1_000_000),
            "audio": len(c.streams.audio),
        }


def origin(api: httpx.Client) -> str:
    """The scheme and host the client reaches the gateway on: every URL in an answer starts with it."""
    return str(api.base_url).rstrip("/")


def test_create_returns_a_job_record_at_once(api: httpx.Client) -> None:
    t0 = time.monotonic()
    r = api.post("/v1/videos", json={"model": MODEL, "prompt": "a lighthouse at dusk", "duration": 1, "size": "160x90"})
    assert time.monotonic() - t0 < 10  # answered queued, before any work (asserted below), however busy
    assert r.status_code == 202, r.text
    job, base = r.json(), origin(api)
    assert job["id"].startswith("vid_") and job["object"] == "video"
    assert job["status"] == "queued" and job["model"] == MODEL and job["provider"] == "vidgate"
    assert job["lifecycle_status"] == "pending" and job["native_video_id"] is None
    assert job["polling_url"] == r.headers["location"] == f"{base}/v1/videos/{job['id']}"
    assert job["cancel_url"] == f"{base}/v1/videos/{job['id']}/cancel"
    assert job["websocket_url"] == f"{base.replace('http', 'ws', 1)}/v1/async/video/{job['id']}/ws"
    assert 1 <= job["poll_after_seconds"] <= 20
    assert job["seconds"] == 1 and job["size"] == "160x90" and job["audio"] is False
    assert job["progress_source"] == "estimated"
    billing = job["billing"]
    assert billing["state"] == "estimated" and billing["reservation_status"] == "held" and billing["held"] > 0
    assert billing["estimated_nanos"] == billing["reserved_nanos"] == round(billing["held"] * 10**9)
    assert Decimal(billing["estimated_user_cost"]) * 10**9 == billing["estimated_nanos"]
    assert billing["charged"] is False and billing["settled_user_cost"] is None and billing["total_nanos"] is None
    assert billing["reservation_id"] == f"res_{job['id'][4:]}"
    for absent in ("content_url", "download_url", "expires_at"):
        assert absent not in job


def test_completed_job_has_asset_and_decodes(api: httpx.Client) -> None:
    job = create(api, duration=2, size="320x180", seed=7)
    done = wait_status(api, job["id"], {"completed", "failed"})
    assert done["status"] == "completed", done
    assert done["id"] == job["id"] and done["progress"] == 100
    assert done["started_at"] and done["completed_at"] >= done["started_at"]
    asset = done["asset"]
    assert asset["mime_type"] == "video/mp4" and asset["width"] == 320 and asset["height"] == 180
    assert asset["duration_seconds"] == pytest.approx(2.0, abs=0.05)
    base = f"{origin(api)}/v1/videos/{job['id']}"
    assert done["content_url"] == f"{base}/content" and done["outputs"][0]["content_url"] == f"{base}/content?index=0"
    assert done["download_url"].startswith(f"{base}/download?") and done["expires_at"] > time.time()
    assert done["outputs"][0]["bytes_available"] is True and done["outputs"][0]["index"] == 0
    assert done["lifecycle_status"] == "completed" and done["cancel_url"] is None
    assert done["native_video_id"] == done["generation_id"] and done["native_video_id"]
    billing = done["billing"]
    assert billing["state"] == billing["reservation_status"] == "settled" and billing["charged"] is True
    assert done["usage"]["cost"] == billing["settled"] > 0 and billing["reserved_nanos"] == 0
    assert Decimal(billing["settled_user_cost"]) * 10**9 == billing["total_nanos"] == round(billing["settled"] * 10**9)
    assert "poll_after_seconds" not in done

    r = api.get(done["content_url"])
    assert r.status_code == 200 and r.headers["content-type"] == "video/mp4"
    assert r.headers["accept-ranges"] == "bytes" and r.headers["etag"] == f'"{asset["sha256"]}"'
    assert int(r.headers["content-length"]) == asset["bytes"] == len(r.content)
    assert hashlib.sha256(r.content).hexdigest() == asset["sha256"]
    assert r.content[4:8] == b"ftyp" and r.content.find(b"moov") < r.content.find(b"mdat")
    info = decode(r.content)
    assert info == {
        "width": 320,
        "height": 180,
        "frames": 48,
        "codec": "h264",
        "pix_fmt": "yuv420p",
        "duration": pytest.approx(2.0, abs=0.05),
        "audio": 0,
    }


def test_range_requests(api: httpx.Client) -> None:
    job = create(api, duration=1, size="160x90")
    wait_status(api, job["id"], {"completed"})
    url = f"/v1/videos/{job['id']}/content"
    full = api.get(url).content
    r = api.get(url, headers={"Range": "bytes=0-99"})
    assert r.status_code == 206 and r.content == full[:100]
    assert r.headers["content-range"] == f"bytes 0-99/{len(full)}" and r.headers["content-length"] == "100"
    r = api.get(url, headers={"Range": "bytes=-50"})
    assert r.status_code == 206 and r.content == full[-50:]
    r = api.get(url, headers={"Range": f"bytes=100-{len(full) + 999}"})
    assert r.status_code == 206 and r.content == full[100:]
    r = api.get(url, headers={"Range": f"bytes={len(full) + 10}-"})
    assert r.status_code == 416
    assert api.get(url, params={"index": 3}).status_code == 404


def _secret(gateway: GatewayProcess) -> str:
    return (gateway.data_dir / "signing_secret").read_text().strip()


def test_signed_download_links(gateway: GatewayProcess, api: httpx.Client) -> None:
    job = create(api, duration=1, size="160x90")
    other = create(api, duration=1, size="160x90", seed=3)
    wait_status(api, job["id"], {"completed"})
    wait_status(api, other["id"], {"completed"})
    r = api.post(f"/v1/videos/{job['id']}/download_url", json={"ttl_seconds": 120, "disposition": "inline"})
    assert r.status_code == 200, r.text
    link = r.json()
    assert link["expires_at"] - time.time() == pytest.approx(120, abs=5)
    assert link["download_url"] == link["url"] and link["url"].startswith(("http://", "https://"))
    for asked in ({"json": {}}, {}):  # the reference's clients send {} or nothing: the defaults
        plain = api.post(f"/v1/videos/{job['id']}/download_url", **asked)
        assert plain.status_code == 200 and plain.json()["disposition"] == "attachment", plain.text
    anon = httpx.Client(base_url=gateway.base_url)
    ok = anon.get(link["url"])
    assert ok.status_code == 200
    if getattr(gateway, "backend", "sqlite") != "postgres":  # S3 presigned links carry the store's headers
        assert ok.headers["content-disposition"].startswith("inline")
    assert hashlib.sha256(ok.content).hexdigest() == api.get(f"/v1/videos/{job['id']}").json()["asset"]["sha256"]
    assert anon.get(link["url"], headers={"Range": "bytes=0-9"}).status_code == 206

    own = api.get(f"/v1/videos/{job['id']}").json()["download_url"]
    assert anon.get(own).status_code == 200
    parsed = urlparse(own)
    q = {k: v[0] for k, v in parse_qs(parsed.query).items()}
    tampered = [
        {**q, "signature": q["signature"][:-1] + ("0" if q["signature"][-1] != "0" else "1")},
        {**q, "expires": str(int(q["expires"]) + 60)},
        {**q, "disposition": "inline" if q["disposition"] == "attachment" else "attachment"},
        {**q, "index": "1"},
        {k: v for k, v in q.items() if k != "signature"},
    ]
    for bad in tampered:
        r = anon.get(f"{parsed.path}?{urlencode(bad)}")
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden", bad
    foreign = anon.get(f"/v1/videos/{other['id']}/download?{parsed.query}")
    assert foreign.status_code == 403

    import hmac

    expired = int(time.time()) - 5
    msg = f"{job['id']}\n0\nattachment\n{expired}".encode()
    sig = hmac.new(_secret(gateway).encode(), msg, hashlib.sha256).hexdigest()
    r = anon.get(
        f"/v1/videos/{job['id']}/download",
        params={"index": 0, "disposition": "attachment", "expires": expired, "signature": sig},
    )
    assert r.status_code == 403 and "expired" in r.json()["error"]["message"]

    for ttl in (59, 3601):
        r = api.post(f"/v1/videos/{job['id']}/download_url", json={"ttl_seconds": ttl})
        assert r.status_code == 400 and r.json()["error"]["param"] == "ttl_seconds"
    r = api.post(f"/v1/videos/{job['id']}/download_url")
    assert r.status_code == 200 and r.json()["expires_at"] - time.time() == pytest.approx(900, abs=5)


def test_cancel_running_render_then_delete(api: httpx.Client) -> None:
    job = create(api, duration=20, size="1920x1080")
    running = wait_status(api, job["id"], {"processing"}, timeout=30)
    r = api.get(f"/v1/videos/{job['id']}/content")
    assert r.status_code == 409 and r.json()["error"]["code"] == "not_ready"
    assert api.delete(f"/v1/videos/{job['id']}").status_code == 409
    g = api.get(f"/v1/videos/{job['id']}")
    assert g.headers.get("retry-after") == str(g.json()["poll_after_seconds"])
    r = api.post(f"/v1/videos/{job['id']}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "cancelled", r.text
    assert running["status"] == "processing"
    time.sleep(1.0)
    after = api.get(f"/v1/videos/{job['id']}").json()
    assert after["status"] == "cancelled" and after["billing"]["state"] == "void" and after["usage"]["cost"] == 0
    again = api.post(f"/v1/videos/{job['id']}/cancel")
    assert again.status_code == 409 and "cancelled" in again.json()["error"]["message"]
    r = api.get(f"/v1/videos/{job['id']}/content")
    assert r.status_code == 409 and "cancelled" in r.json()["error"]["message"]
    d = api.delete(f"/v1/videos/{job['id']}")
    assert d.status_code == 200 and d.json() == {"id": job["id"], "object": "video.deleted", "deleted": True}
    assert api.get(f"/v1/videos/{job['id']}").status_code == 404


def test_delete_completed_removes_outputs(gateway: GatewayProcess, api: httpx.Client) -> None:
    job = create(api, duration=1, size="160x90")
    done = wait_status(api, job["id"], {"completed"})
    keys = blob_keys(gateway, f"videos/{job['id']}")
    stem = keys[0].removesuffix(".mp4")  # the video, then its spritesheet and thumbnail beside it
    assert keys == [f"{stem}.mp4", f"{stem}.spritesheet.jpg", f"{stem}.thumbnail.webp"]
    assert done["asset"]["sha256"][:16] in keys[0]
    assert api.delete(f"/v1/videos/{job['id']}").json()["deleted"] is True
    assert blob_keys(gateway, f"videos/{job['id']}") == []
    assert api.get(f"/v1/videos/{job['id']}/content").status_code == 404
    assert api.delete(f"/v1/videos/{job['id']}").status_code == 404


def test_owner_isolation(gateway: GatewayProcess, api: httpx.Client) -> None:
    job = create(api, duration=1, size="160x90")
    wait_status(api, job["id"], {"completed"})
    with gateway.client(gateway.new_key("intruder")) as other:
        for method, path in [
            ("GET", ""),
            ("GET", "/content"),
            ("POST", "/cancel"),
            ("DELETE", ""),
            ("POST", "/download_url"),
        ]:
            r = other.request(method, f"/v1/videos/{job['id']}{path}")
            assert r.status_code == 404, (method, path, r.text)
            assert r.json()["error"]["code"] == "not_found"
        assert other.get("/v1/videos").json()["data"] == []
    assert api.get(f"/v1/videos/{job['id']}").status_code == 200


def test_idempotency_key(api: httpx.Client) -> None:
    body = {"model": MODEL, "prompt": "same body", "duration": 1, "size": "160x90"}
    first = api.post("/v1/videos", json=body, headers={"Idempotency-Key": "k-1"})
    second = api.post("/v1/videos", json=dict(reversed(list(body.items()))), headers={"Idempotency-Key": "k-1"})
    assert first.status_code == 202 and second.status_code == 200
    assert second.json()["id"] == first.json()["id"] and second.headers["idempotent-replayed"] == "true"
    third = api.post("/v1/videos", json={**body, "prompt": "other"}, headers={"Idempotency-Key": "k-1"})
    assert third.status_code == 409 and third.json()["error"]["param"] == "Idempotency-Key"
    assert len(api.get("/v1/videos").json()["data"]) == 1


def test_list_pagination_and_filters(api: httpx.Client) -> None:
    ids = [create(api, duration=20, size="1920x1080")["id"]]
    assert api.post(f"/v1/videos/{ids[0]}/cancel").json()["status"] == "cancelled"
    ids += [create(api, duration=1, size="64x64", seed=i)["id"] for i in range(4)]
    for vid in ids[1:]:
        wait_status(api, vid, {"completed"})
    seen, after = [], None
    while True:
        page = api.get("/v1/videos", params={"limit": 2, **({"after": after} if after else {})}).json()
        assert page["object"] == "list" and len(page["data"]) <= 2
        seen += [v["id"] for v in page["data"]]
        if not page["has_more"]:
            break
        after = page["last_id"]
    assert seen == sorted(ids, reverse=True)
    asc = api.get("/v1/videos", params={"order": "asc", "limit": 100}).json()
    assert [v["id"] for v in asc["data"]] == sorted(ids)
    cancelled = api.get("/v1/videos", params={"status": "canceled"}).json()["data"]
    assert [v["id"] for v in cancelled] == [ids[0]]
    both = api.get("/v1/videos", params={"status": "completed,cancelled"}).json()["data"]
    assert len(both) == 5
    assert api.get("/v1/videos", params={"status": "pending,in_progress"}).json()["data"] == []


def test_audio_samples_and_first_frame(api: httpx.Client) -> None:
    first = png_data_url((250, 20, 20), 64, 64)
    job = create(
        api,
        duration=2,
        size="256x144",
        generate_audio=True,
        sample_count=2,
        seed=11,
        input_references=[{"type": "image_url", "role": "first_frame", "image_url": {"url": first}}],
    )
    done = wait_status(api, job["id"], {"completed", "failed"})
    assert done["status"] == "completed", done
    assert done["audio"] is True and len(done["outputs"]) == 2
    shas = set()
    for out in done["outputs"]:
        data = api.get(out["content_url"]).content
        shas.add(hashlib.sha256(data).hexdigest())
        info = decode(data)
        assert info["audio"] == 1 and info["frames"] == 48 and info["width"] == 256
        with av.open(io.BytesIO(data)) as c:
            frame = next(c.decode(video=0)).to_ndarray(format="rgb24").astype(int)
        assert np.abs(frame.mean(axis=(0, 1)) - np.array([250, 20, 20])).max() < 40
    assert len(shas) == 2


def test_same_prompt_and_seed_give_the_same_bytes(api: httpx.Client) -> None:
    a = create(api, duration=1, size="160x90", seed=42)
    b = create(api, duration=1, size="160x90", seed=42)
    c = create(api, duration=1, size="160x90", seed=42, prompt="a storm over the sea")
    shas = [wait_status(api, j["id"], {"completed"})["asset"]["sha256"] for j in (a, b, c)]
    assert shas[0] == shas[1] != shas[2]


def test_resolution_and_aspect_ratio(api: httpx.Client) -> None:
    job = create(api, duration=1, resolution="360p", aspect_ratio="9:16")
    done = wait_status(api, job["id"], {"completed"})
    assert done["size"] == "360x640" and done["asset"]["width"] == 360 and done["asset"]["height"] == 640


def test_models_route(api: httpx.Client) -> None:
    models = api.get("/v1/videos/models").json()
    proc = next(m for m in models["data"] if m["id"] == MODEL)
    caps = proc["capabilities"]
    assert caps["durations"] == list(range(1, 21)) and caps["audio"] and caps["cancellable"]
    expected = {"name": "vidgate", "alpha": False, "available": True, "healthy": True}
    assert expected.items() <= proc["providers"][0].items()  # the reference's fields sit alongside
    assert proc["pricing"]["per_second"] > 0


def test_openapi_and_docs(api: httpx.Client) -> None:
    doc = api.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.") and "/v1/videos" in doc["paths"]
    assert "VideoGenerationRequest" in doc["components"]["schemas"]
    assert api.get("/docs").status_code == 200


def test_undecodable_first_frame_fails_the_job_at_once(api: httpx.Client) -> None:
    bogus = "data:image/png;base64," + __import__("base64").b64encode(b"not an image at all").decode()
    job = create(
        api,
        duration=1,
        size="64x64",
        input_references=[{"type": "image_url", "role": "first_frame", "image_url": {"url": bogus}}],
    )
    done = wait_status(api, job["id"], {"failed", "completed"}, timeout=20)
    assert done["status"] == "failed" and done["error"]["code"] == "input_reference_invalid", done
    assert done["billing"]["state"] == "void"


def test_large_range_is_served_exactly(api: httpx.Client) -> None:
    job = create(api, duration=8, size="1280x720", seed=5)
    done = wait_status(api, job["id"], {"completed"}, timeout=60)
    url = f"/v1/videos/{job['id']}/content"
    full = api.get(url).content
    assert len(full) == done["asset"]["bytes"] > 300_000
    start, end = 1000, len(full) - 7  # more than one 256 KiB read
    r = api.get(url, headers={"Range": f"bytes={start}-{end}"})
    assert r.status_code == 206 and r.content == full[start : end + 1]
    assert r.headers["content-range"] == f"bytes {start}-{end}/{len(full)}"
    assert r.headers["content-length"] == str(end + 1 - start) and r.headers["etag"] == f'"{done["asset"]["sha256"]}"'
    head = api.head(url, headers={"Range": "bytes=0-9"})
    assert head.status_code in (200, 206) and head.content == b""
