"""Conditional polls: every job answer carries an ETag that moves with the job; If-None-Match gets 304."""

from __future__ import annotations

import re
import time

import httpx
import pytest
from helpers.gateway import stable, wait_status

pytestmark = pytest.mark.both_backends
SMALL = {"model": "vidgate/procedural", "prompt": "conditional polls", "duration": 1, "size": "160x90"}
SLOW = {**SMALL, "duration": 4, "size": "640x360"}  # long enough to be seen in flight, as a rule
TAG = re.compile(r'W/"(vid_[0-9a-z]+)-([0-9]+)(?:\.[0-9]+)?"\Z')


def version(tag: str, job_id: str) -> int:
    m = TAG.match(tag)
    assert m is not None and m.group(1) == job_id, tag
    return int(m.group(2))


def test_etag_moves_with_the_job_and_a_match_is_304(api: httpx.Client) -> None:
    job = api.post("/v1/videos", json=SLOW).json()
    url = f"/v1/videos/{job['id']}"
    seen: dict[str, set[str]] = {}  # tag -> the statuses it was given with
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        r = api.get(url)
        assert r.status_code == 200 and r.headers["cache-control"] == "private, no-cache"
        seen.setdefault(r.headers["etag"], set()).add(r.json()["status"])
        if r.json()["status"] == "completed":
            break
        time.sleep(0.05)
    first, done = next(iter(seen)), r.headers["etag"]
    assert seen[done] == {"completed"}
    if first != done:  # the poll saw the job in flight (a fast render may finish before the first poll)
        assert "completed" not in seen[first]
    # One tag never stood for two states, and versions only grew.
    assert all(len(statuses) == 1 for statuses in seen.values()), seen
    versions = [version(t, job["id"]) for t in seen]
    assert versions == sorted(versions) and len(set(versions)) == len(versions)

    same = api.get(url, headers={"If-None-Match": done})
    assert same.status_code == 304 and same.content == b""
    assert same.headers["etag"] == done and same.headers["cache-control"] == "private, no-cache"
    assert same.headers["x-request-id"].startswith("req_") and "content-type" not in same.headers
    assert api.get(url, headers={"If-None-Match": f'"nope", {done}'}).status_code == 304
    assert api.get(url, headers={"If-None-Match": done.removeprefix("W/")}).status_code == 304  # weak comparison
    assert api.get(url, headers={"If-None-Match": "*"}).status_code == 304

    stale = api.get(url, headers={"If-None-Match": first})
    assert stale.status_code == 200 and stale.headers["etag"] == done
    assert stable(stale.json()) == stable(api.get(url).json())
    assert api.get(url, headers={"If-None-Match": '"something-else"'}).status_code == 200
    # The reference's spelling of the path answers alike.
    alias = api.get(f"/v1/video/generations/{job['id']}", headers={"If-None-Match": done})
    assert alias.status_code == 304 and alias.headers["etag"] == done


def test_a_change_after_the_finish_moves_the_tag(api: httpx.Client) -> None:
    """Deleting a finished job is a change too: its tag no longer answers 304, the poll a 404."""
    job = api.post("/v1/videos", json=SMALL).json()
    wait_status(api, job["id"], {"completed"})
    tag = api.get(f"/v1/videos/{job['id']}").headers["etag"]
    assert api.delete(f"/v1/videos/{job['id']}").status_code == 200
    gone = api.get(f"/v1/videos/{job['id']}", headers={"If-None-Match": tag})
    assert gone.status_code == 404 and gone.json()["error"]["param"] == "video_id"


def test_errors_carry_no_etag(api: httpx.Client) -> None:
    r = api.get("/v1/videos/vid_00000000000000000000000000", headers={"If-None-Match": "*"})
    assert r.status_code == 404 and "etag" not in r.headers


def test_the_openai_mount_answers_conditionally_too(api: httpx.Client) -> None:
    job = api.post("/v1/videos", json=SMALL).json()
    url = f"/openai/v1/videos/{job['id']}"
    early = api.get(url)
    assert early.status_code == 200 and early.json()["object"] == "video"
    wait_status(api, job["id"], {"completed"})
    done = api.get(url)
    assert done.status_code == 200 and done.json()["status"] == "completed"
    tag = done.headers["etag"]
    assert version(tag, job["id"]) > version(early.headers["etag"], job["id"])
    same = api.get(url, headers={"If-None-Match": tag})
    assert same.status_code == 304 and same.content == b"" and same.headers["etag"] == tag
    stale = api.get(url, headers={"If-None-Match": early.headers["etag"]})
    assert stale.status_code == 200 and stale.json() == done.json()
