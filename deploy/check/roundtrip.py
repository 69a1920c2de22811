"""One real job through a running deployment: create -> completed -> content, checked and timed.

    python deploy/check/roundtrip.py --base-url http://127.0.0.1:8080 --api-key vg_… \
        [--prometheus URL --expect vidgate-api=2 --expect vidgate-worker=1]

It proves what an operator needs from a fresh stack: the API answers through its proxy, a worker
renders and stores the output (sha256, ETag and Range agree with the job), and, given Prometheus,
that every process expected is scraped. Exits non-zero on the first thing that is wrong.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from dataclasses import dataclass

import httpx
import msgspec

from vidgate.types import Video

TERMINAL = {"completed", "failed", "cancelled", "expired"}


@dataclass(frozen=True)
class Figures:
    job_id: str
    seconds_to_completed: float
    bytes: int
    sha256: str
    width: int
    height: int
    duration_seconds: float
    scraped: dict[str, int]


def run(base_url: str, api_key: str, prometheus: str | None, expect: dict[str, int], timeout: float) -> Figures:
    headers = {"Authorization": f"Bearer {api_key}"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=30) as http:
        ready = http.get("/readyz")
        ready.raise_for_status()
        started = time.monotonic()
        body = {"model": "vidgate/procedural", "prompt": "a red fox in fresh snow", "duration": 2}
        created = http.post("/v1/videos", json=body)
        if created.status_code != 202:
            raise SystemExit(f"create answered {created.status_code}: {created.text}")
        video = msgspec.json.decode(created.content, type=Video)
        while video.status not in TERMINAL:
            if time.monotonic() - started > timeout:
                raise SystemExit(f"{video.id} still {video.status} after {timeout:.0f} s")
            time.sleep(0.5)
            video = msgspec.json.decode(http.get(f"/v1/videos/{video.id}").content, type=Video)
        elapsed = time.monotonic() - started
        if video.status != "completed" or video.asset is None:
            raise SystemExit(f"{video.id} ended {video.status}: {video.error}")
        content = http.get(f"/v1/videos/{video.id}/content")
        content.raise_for_status()
        digest = hashlib.sha256(content.content).hexdigest()
        if digest != video.asset.sha256 or len(content.content) != video.asset.bytes:
            raise SystemExit(f"content {len(content.content)} B sha256 {digest} != the job's {video.asset}")
        if content.headers.get("etag", "").strip('"') != digest:
            raise SystemExit(f"ETag {content.headers.get('etag')} is not the sha256")
        ranged = http.get(f"/v1/videos/{video.id}/content", headers={"Range": "bytes=0-99"})
        if ranged.status_code != 206 or ranged.content != content.content[:100]:
            raise SystemExit(f"Range answered {ranged.status_code} with {len(ranged.content)} B")
        if content.content[4:8] != b"ftyp":
            raise SystemExit("the content is not an MP4")
    scraped = {} if prometheus is None else {job: _scraped(prometheus, job, n, timeout) for job, n in expect.items()}
    asset = video.asset
    return Figures(
        video.id, elapsed, asset.bytes, asset.sha256, asset.width, asset.height, asset.duration_seconds, scraped
    )


def _scraped(prometheus: str, job: str, wanted: int, timeout: float) -> int:
    """How many targets of ``job`` Prometheus scrapes successfully, waiting up to ``timeout`` for ``wanted``."""
    deadline = time.monotonic() + timeout
    up = 0
    while time.monotonic() < deadline:
        answer = httpx.get(f"{prometheus}/api/v1/query", params={"query": f'up{{job="{job}"}}'}, timeout=10)
        answer.raise_for_status()
        up = sum(1 for r in answer.json()["data"]["result"] if r["value"][1] == "1")
        if up >= wanted:
            return up
        time.sleep(2)
    raise SystemExit(f"Prometheus scrapes {up} of {wanted} {job} targets")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--prometheus", help="Prometheus' URL, to check the scrape targets --expect names")
    parser.add_argument("--expect", action="append", default=[], metavar="JOB=N", help="N targets of JOB are up")
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args()
    expect = {job: int(n) for job, n in (item.split("=", 1) for item in args.expect)}
    figures = run(args.base_url, args.api_key, args.prometheus, expect, args.timeout)
    scraped = ", ".join(f"{n} {job}" for job, n in figures.scraped.items())
    print(
        f"[roundtrip] {figures.job_id} completed in {figures.seconds_to_completed:.2f} s: "
        f"{figures.width}x{figures.height} {figures.duration_seconds:.2f} s, {figures.bytes} B, "
        f"sha256 {figures.sha256[:16]}… (content, ETag and Range agree)"
        + (f"; Prometheus scrapes {scraped}" if scraped else "")
    )


if __name__ == "__main__":
    sys.exit(main())
