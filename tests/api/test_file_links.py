"""Signed links to an upload's bytes (``GET /v1/files/{id}/download``), over real HTTP on SQLite + local
files and on PostgreSQL + S3: a good link serves the upload's exact bytes, whole or a range, without
the API key; a tampered, malformed, expired or video-signed link is refused in the envelope; an
upload deleted since is a 404."""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import parse_qs, urlencode, urlparse

import httpx
import pytest
from fakes.media import mp4
from helpers.envelope import envelope
from helpers.gateway import GatewayProcess

from vidgate.gateway.jobs.signing import sign_file_path

pytestmark = pytest.mark.both_backends

CLIP = mp4(seconds=1.0)


def _secret(gateway: GatewayProcess) -> str:
    return (gateway.data_dir / "signing_secret").read_text().strip()


def uploaded(api: httpx.Client, content: bytes = CLIP) -> dict:
    r = api.post("/v1/files", files={"file": ("clip.mp4", content, "application/octet-stream")})
    assert r.status_code == 201, r.text
    return r.json()


def link(gateway: GatewayProcess, file_id: str, ttl: int = 300) -> str:
    return sign_file_path(_secret(gateway), file_id, int(time.time()) + ttl)


def test_a_signed_link_serves_the_uploads_bytes_and_ranges(gateway: GatewayProcess, api: httpx.Client) -> None:
    f = uploaded(api)
    path = link(gateway, f["id"])
    with httpx.Client(base_url=gateway.base_url) as anon:  # no API key
        r = anon.get(path)
        assert r.status_code == 200, r.text
        assert hashlib.sha256(r.content).hexdigest() == f["sha256"] == hashlib.sha256(CLIP).hexdigest()
        assert r.headers["content-type"] == "video/mp4"
        assert r.headers["etag"] == f'"{f["sha256"]}"'
        part = anon.get(path, headers={"Range": "bytes=10-99"})
        assert part.status_code == 206, part.text
        assert part.content == CLIP[10:100]
        assert part.headers["content-range"] == f"bytes 10-99/{len(CLIP)}"
        tail = anon.get(path, headers={"Range": "bytes=-16"})
        assert tail.status_code == 206 and tail.content == CLIP[-16:]
        envelope(anon.get(path, headers={"Range": f"bytes={len(CLIP) + 5}-"}), 416, "range_not_satisfiable")
        head = anon.head(path)
        assert head.status_code == 200 and int(head.headers["content-length"]) == len(CLIP)


def test_tampered_malformed_expired_and_video_signed_links_are_refused(
    gateway: GatewayProcess, api: httpx.Client
) -> None:
    f, other = uploaded(api), uploaded(api, mp4(seconds=1.0, width=32, height=18))
    parsed = urlparse(link(gateway, f["id"]))
    q = {k: v[0] for k, v in parse_qs(parsed.query).items()}
    flipped = q["signature"][:-1] + ("0" if q["signature"][-1] != "0" else "1")
    bad_queries = [
        {**q, "signature": flipped},
        {**q, "expires": str(int(q["expires"]) + 60)},
        {"expires": q["expires"]},
        {"signature": q["signature"]},
        {**q, "expires": "soon"},
    ]
    with httpx.Client(base_url=gateway.base_url) as anon:
        for bad in bad_queries:
            envelope(anon.get(f"{parsed.path}?{urlencode(bad)}"), 403, "forbidden")
        # Another upload's signature does not open this one.
        envelope(anon.get(f"/v1/files/{other['id']}/download?{parsed.query}"), 403, "forbidden")

        secret = _secret(gateway).encode()
        expired = int(time.time()) - 5
        sig = hmac.new(secret, f"vidgate/file-download/v1\n{f['id']}\n{expired}".encode(), hashlib.sha256).hexdigest()
        err = envelope(anon.get(f"/v1/files/{f['id']}/download?expires={expired}&signature={sig}"), 403, "forbidden")
        assert "expired" in err["message"]

        # A video link's signature over the same id and expiry never verifies as a file's.
        expires = int(time.time()) + 300
        for disposition in ("inline", "attachment"):
            video_sig = hmac.new(secret, f"{f['id']}\n0\n{disposition}\n{expires}".encode(), hashlib.sha256).hexdigest()
            r = anon.get(f"/v1/files/{f['id']}/download?expires={expires}&signature={video_sig}")
            envelope(r, 403, "forbidden")
        # Nor does a file link's signature open a video download.
        r = anon.get(
            f"/v1/videos/{f['id']}/download",
            params={"index": 0, "disposition": "inline", "expires": q["expires"], "signature": q["signature"]},
        )
        envelope(r, 403, "forbidden")
        # None of the refusals echoes the link's signature.
        assert q["signature"] not in r.text


def test_a_deleted_upload_is_not_found(gateway: GatewayProcess, api: httpx.Client) -> None:
    f = uploaded(api)
    path = link(gateway, f["id"])
    with httpx.Client(base_url=gateway.base_url) as anon:
        assert anon.get(path).status_code == 200
        assert api.delete(f"/v1/files/{f['id']}").status_code == 200
        err = envelope(anon.get(path), 404, "not_found")
        assert err["param"] == "file_id"
        envelope(anon.get(link(gateway, "file_01NOSUCHUPLOAD")), 404, "not_found")


def test_the_route_is_in_the_openapi_document(gateway: GatewayProcess) -> None:
    doc = httpx.get(f"{gateway.base_url}/openapi.json").json()
    op = doc["paths"]["/v1/files/{file_id}/download"]["get"]
    assert op["operationId"] == "downloadFileSigned"
    assert {"200", "206", "403", "404", "416"} <= set(op["responses"])
    assert not op.get("security")
