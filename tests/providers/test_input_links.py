"""Inputs an upstream reads by https URL only, given as an upload or an earlier output: through a running
gateway whose public URL is https, the worker hands the fake Luma a signed link to the gateway's own
copy, and that very link, asked of the gateway, serves exactly the source's bytes. Without an https
public URL (SQLite, local files) the job is refused, saying how to fix it. And which link an input
gets: signed on an https public URL, else the store's presigned URL only when that is https."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from fakes.luma_fake import LumaFake
from fakes.media import mp4
from fakes.server import small_mp4
from helpers.gateway import GatewayProcess

from providers.served import finish, fleet_of, fresh_client
from providers.wiring import Fleet
from vidgate.gateway.secret import Secret
from vidgate.gateway.storage.blobs import BlobStore
from vidgate.gateway.worker.input_links import InputLinks, expiry, signed_base, usable_presigned

PUBLIC = "https://gw.test"
CLIP = mp4(seconds=2.0)


@pytest.fixture(scope="module")
def fleet() -> Iterator[Fleet]:
    yield from fleet_of(["luma"], {"luma": {"polls_to_complete": 2}})


def _gateway(fleet: Fleet, root: Path, env: dict[str, str]) -> Iterator[GatewayProcess]:
    config = {"VIDGATE_CONFIG": str(fleet.config(root / "providers.toml"))}
    proc = GatewayProcess(root / "gw", env={**config, **env})
    yield proc.start()
    proc.stop()


@pytest.fixture(scope="module")
def public_gw(fleet: Fleet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    yield from _gateway(fleet, tmp_path_factory.mktemp("links-https"), {"VIDGATE_PUBLIC_URL": PUBLIC})


@pytest.fixture(scope="module")
def plain_gw(fleet: Fleet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    yield from _gateway(fleet, tmp_path_factory.mktemp("links-plain"), {})


@pytest.fixture
def client(public_gw: GatewayProcess, fleet: Fleet) -> Iterator[httpx.Client]:
    yield from fresh_client(public_gw, fleet, "links-https")


@pytest.fixture
def plain_client(plain_gw: GatewayProcess, fleet: Fleet) -> Iterator[httpx.Client]:
    yield from fresh_client(plain_gw, fleet, "links-plain")


def edit_of(**source: str) -> dict[str, Any]:
    return {
        "model": "luma/ray-2",
        "operation": "edit",
        "input_references": [{"type": "video", "role": "source", **source}],
    }


def upload(client: httpx.Client) -> dict[str, Any]:
    r = client.post("/v1/files", files={"file": ("pond.mp4", CLIP, "application/octet-stream")})
    assert r.status_code == 201, r.text
    return r.json()


def sent_media_url(fake: LumaFake) -> str:
    modifies = [r for r in fake.requests if r["path"].endswith("/generations/video/modify")]
    assert modifies, fake.requests
    url = modifies[-1]["json"]["media"]["url"]
    assert url.startswith(f"{PUBLIC}/"), url
    return url


def fetched_through_gateway(gw: GatewayProcess, url: str) -> bytes:
    """The link as the upstream would read it, asked of the gateway on loopback (no API key)."""
    parts = urlsplit(url)
    r = httpx.get(f"{gw.base_url}{parts.path}?{parts.query}", timeout=30)
    assert r.status_code == 200, r.text
    return r.content


def test_an_uploaded_source_goes_to_luma_as_a_signed_link_to_its_bytes(
    client: httpx.Client, fleet: Fleet, public_gw: GatewayProcess
) -> None:
    f = upload(client)
    done = finish(client, edit_of(file_id=f["id"]))
    assert done["provider"] == "luma"
    url = sent_media_url(fleet["luma"])
    assert urlsplit(url).path == f"/v1/files/{f['id']}/download"
    body = fetched_through_gateway(public_gw, url)
    assert hashlib.sha256(body).hexdigest() == hashlib.sha256(CLIP).hexdigest() == f["sha256"]
    # What the caller reads back of the job shows the upload, never the link.
    signature = urlsplit(url).query.rsplit("signature=", 1)[1]
    request = client.get(f"/v1/videos/{done['id']}/request")
    assert request.json()["input_references"][0]["file_id"] == f["id"]
    assert signature not in request.text and signature not in client.get(f"/v1/videos/{done['id']}").text


@pytest.mark.parametrize("by", ["job", "asset"])
def test_an_earlier_output_goes_to_luma_as_a_signed_link_to_its_bytes(
    client: httpx.Client, fleet: Fleet, public_gw: GatewayProcess, by: str
) -> None:
    first = finish(client, {"model": "luma/ray-2", "duration": 5})
    named = first["id"] if by == "job" else first["asset"]["id"]
    assert named.startswith("vid_" if by == "job" else "ast_")
    done = finish(client, edit_of(asset_id=named))
    assert done["provider"] == "luma"
    url = sent_media_url(fleet["luma"])
    assert urlsplit(url).path == f"/v1/videos/{first['id']}/download"
    body = fetched_through_gateway(public_gw, url)
    assert hashlib.sha256(body).hexdigest() == first["asset"]["sha256"] == hashlib.sha256(small_mp4()).hexdigest()


def test_without_an_https_public_url_the_edit_is_refused_saying_how_to_fix_it(
    plain_client: httpx.Client, fleet: Fleet
) -> None:
    f = upload(plain_client)
    failed = finish(plain_client, edit_of(file_id=f["id"]), "failed")
    message = failed["error"]["message"]
    assert "luma reads the video to modify by its https URL" in message, failed
    assert "public_url" in message and "https URL" in message
    assert not [r for r in fleet["luma"].requests if r["method"] == "POST"]


def test_which_link_an_input_gets() -> None:
    assert signed_base(PUBLIC) == PUBLIC
    assert signed_base("http://gw.test") is None and signed_base("") is None
    assert (
        usable_presigned("https://bucket.s3.example/k?X-Amz-Signature=ab")
        == "https://bucket.s3.example/k?X-Amz-Signature=ab"
    )
    assert usable_presigned("http://127.0.0.1:8333/bucket/k?X-Amz-Signature=ab") == ""
    assert usable_presigned(None) == ""
    # One expiry per job: ttl after its create, never before its deadline.
    assert expiry(1_000_000, 1_000_000 + 3_600_000, 3600) == 1000 + 3600
    assert expiry(1_000_000, 1_000_000 + 7_200_500, 3600) == 1000 + 7201
    assert expiry(1_000_000, 1_000_000 + 60_000, 3600) == 1000 + 3600


async def test_an_https_store_presigns_and_an_https_public_url_signs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {
        "AWS_ENDPOINT_URL": "https://s3.example.test",
        "AWS_ACCESS_KEY_ID": "test-key",
        "AWS_SECRET_ACCESS_KEY": "test-secret",
        "AWS_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    store = BlobStore("s3://inputs/outputs")
    links = InputLinks("", Secret("s"), store, expires=10**10)
    presigned = await links.file("file_01A", "uploads/file_01A/abc.mp4")
    assert presigned.startswith("https://s3.example.test/inputs/outputs/uploads/file_01A/abc.mp4?")
    assert "X-Amz-Signature=" in presigned
    signed = await InputLinks(PUBLIC, Secret("s"), store, expires=10**10).output("vid_01B", 2, "videos/vid_01B/o.mp4")
    assert signed.startswith(f"{PUBLIC}/v1/videos/vid_01B/download?index=2&disposition=inline&expires=10000000000&")
    local = InputLinks("", Secret("s"), BlobStore(f"file://{tmp_path}"), expires=10**10)
    assert await local.file("file_01A", "uploads/file_01A/abc.mp4") == ""


def test_an_http_store_is_never_presigned_for_an_upstream(s3_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The PostgreSQL + SeaweedFS backend's store is on plain http: its presigned URL is not given out."""
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    bucket = s3_server.create_bucket("input-links")
    store = BlobStore(f"s3://{bucket}/outputs")

    async def go() -> tuple[str | None, str]:
        presigned = await store.presign("uploads/file_01A/abc.mp4", 60)
        link = await InputLinks("", Secret("s"), store, expires=10**10).file("file_01A", "uploads/file_01A/abc.mp4")
        return presigned, link

    presigned, link = asyncio.run(go())
    assert presigned is not None and presigned.startswith("http://")  # the store can presign...
    assert link == ""  # ...but not for an upstream
