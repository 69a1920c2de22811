"""The reference's Python SDK, unmodified, through every video method against a real gateway.

Each test calls ``phaseo.Phaseo`` the way an application on the reference does and checks what it
gets back against the SDK's own generated models (see ``shapes.py``).
"""

from __future__ import annotations

import time
import urllib.error
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers.gateway import GatewayProcess
from phaseo import Phaseo

from compat.driver import LONG, MODEL, SMALL, call, envelope, sdk_for, wait_terminal
from compat.shapes import check_billing, check_job, check_urls

PUBLIC_URL = "https://videos.example.test"


def prompt() -> str:
    return f"a lighthouse at dusk {uuid.uuid4().hex[:8]}"


def create(sdk: Phaseo, **fields: Any) -> dict[str, Any]:
    return call(lambda: sdk.videos.create({"model": MODEL, "prompt": prompt(), **SMALL, **fields}))


@pytest.fixture(scope="module")
def owner(gateway: GatewayProcess) -> str:
    return gateway.new_key("phaseo-module")


@pytest.fixture(scope="module")
def done(gateway: GatewayProcess, owner: str) -> dict[str, Any]:
    """One completed job, read by the tests that do not change it."""
    sdk = sdk_for(gateway.base_url, owner)
    return wait_terminal(sdk, create(sdk)["id"])


@pytest.fixture
def reader(gateway: GatewayProcess, owner: str) -> Phaseo:
    return sdk_for(gateway.base_url, owner)


def test_create_answers_the_reference_job(sdk: Phaseo, gateway: GatewayProcess) -> None:
    job = create(sdk)
    assert job["status"] == "queued" and job["model"] == MODEL
    assert job["progress_source"] == "estimated"
    check_job(job, gateway.base_url)
    assert check_billing(job)["state"] in ("pending", "estimated")
    assert wait_terminal(sdk, job["id"])["status"] == "completed"


def test_retrieve_answers_the_reference_job(reader: Phaseo, gateway: GatewayProcess, done: dict[str, Any]) -> None:
    job = reader.videos.retrieve(done["id"])
    assert job["status"] == "completed"
    check_job(job, gateway.base_url)
    assert [o["index"] for o in job["outputs"]] == [0]
    assert job["outputs"][0]["mime_type"] == "video/mp4" and job["outputs"][0]["bytes_available"] is True


def test_list_returns_the_list_envelope(reader: Phaseo, gateway: GatewayProcess, done: dict[str, Any]) -> None:
    page = reader.videos.list({"limit": 1, "status": "completed"})
    assert page["object"] == "list" and isinstance(page["has_more"], bool)
    [job] = page["data"]
    assert page["first_id"] == page["last_id"] == job["id"]
    check_job(job, gateway.base_url)
    assert done["id"] in {v["id"] for v in reader.videos.list({"limit": 100})["data"]}


def test_content_is_the_mp4(reader: Phaseo, done: dict[str, Any]) -> None:
    data = reader.videos.content(done["id"])
    assert data[4:8] == b"ftyp" and len(data) == done["asset"]["bytes"]


def test_download_url_answers_a_link_that_needs_no_key(reader: Phaseo, done: dict[str, Any]) -> None:
    link = reader.videos.download_url(done["id"])
    assert {"download_url", "expires_at"} <= link.keys(), link
    assert isinstance(link["expires_at"], int) and link["expires_at"] > time.time()
    assert link["download_url"].startswith(("http://", "https://")), link
    r = httpx.get(link["download_url"], timeout=30)
    assert r.status_code == 200 and r.content == reader.videos.content(done["id"])


def test_cancel_answers_the_cancelled_job(sdk: Phaseo, gateway: GatewayProcess) -> None:
    job = create(sdk, **LONG)
    assert job["cancel_url"] == f"{gateway.base_url}/v1/videos/{job['id']}/cancel"
    cancelled = call(lambda: sdk.videos.cancel(job["id"]))
    assert cancelled["status"] == "cancelled" and cancelled["lifecycle_status"] == "cancelled"
    check_job(cancelled, gateway.base_url)
    check_job(sdk.videos.retrieve(job["id"]), gateway.base_url)


def test_delete_then_not_found(sdk: Phaseo) -> None:
    job = wait_terminal(sdk, create(sdk)["id"])
    deleted = sdk.videos.delete(job["id"])
    assert deleted["id"] == job["id"] and deleted["deleted"] is True and isinstance(deleted["object"], str)
    with pytest.raises(urllib.error.HTTPError) as caught:
        sdk.videos.retrieve(job["id"])
    assert caught.value.code == 404 and envelope(caught.value)["code"] == "not_found"


def test_refusals_reach_the_sdk_in_the_envelope(sdk: Phaseo, gateway: GatewayProcess) -> None:
    with pytest.raises(urllib.error.HTTPError) as caught:
        sdk.videos.create({"model": MODEL, "prompt": prompt(), "size": "17x17", "duration": 1})
    error = envelope(caught.value)
    assert caught.value.code == 400 and error["code"] == "validation_error" and error["param"] == "size"
    with pytest.raises(urllib.error.HTTPError) as caught:
        sdk_for(gateway.base_url, "not-a-key").videos.list()
    assert caught.value.code == 401 and envelope(caught.value)["code"] == "unauthorized"


def test_urls_follow_the_request_host(gateway: GatewayProcess, key: str) -> None:
    base = f"http://localhost:{gateway.port}"
    sdk = sdk_for(base, key)
    job = create(sdk)
    check_urls(job, base)
    check_job(wait_terminal(sdk, job["id"]), base)


@pytest.fixture(scope="module")
def public(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    root: Path = tmp_path_factory.mktemp("phaseo-public")
    proc = GatewayProcess(root, env={"VIDGATE_PUBLIC_URL": PUBLIC_URL}, log_name="public").start()
    yield proc
    proc.stop()


def test_urls_follow_the_public_url(public: GatewayProcess) -> None:
    sdk = sdk_for(public.base_url, public.new_key())
    job = create(sdk)
    check_urls(job, PUBLIC_URL)
    done = wait_terminal(sdk, job["id"])
    check_job(done, PUBLIC_URL)
    assert sdk.videos.download_url(done["id"])["download_url"].startswith(PUBLIC_URL + "/")
