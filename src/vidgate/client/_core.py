"""What the sync and async clients share: configuration, request building, retries, decoding.

Each SDK method is a ``Call`` built here; the two clients only differ in how they send it.
"""

from __future__ import annotations

import hashlib
import os
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar
from urllib.parse import urlencode

import httpx
import msgspec

from vidgate import errors
from vidgate.types import (
    TERMINAL_STATUSES,
    Asset,
    DownloadURL,
    Video,
    VideoDeleted,
    VideoGenerationRequest,
    VideoList,
    VideoModelList,
)

DEFAULT_BASE_URL = "http://127.0.0.1:8080"
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
USER_AGENT = "vidgate-python"


@dataclass(frozen=True)
class ClientConfig:
    base_url: str
    api_key: str | None
    timeout: float
    max_retries: int
    backoff_base: float = 0.5
    backoff_max: float = 8.0

    @classmethod
    def build(cls, base_url: str | None, api_key: str | None, timeout: float, max_retries: int) -> ClientConfig:
        return cls(
            base_url=(base_url or os.environ.get("VIDGATE_BASE_URL") or DEFAULT_BASE_URL).rstrip("/"),
            api_key=api_key or os.environ.get("VIDGATE_API_KEY"),
            timeout=timeout,
            max_retries=max_retries,
        )

    def headers(self) -> dict[str, str]:
        h = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if self.api_key:
            h["Authorization"] = f"Bearer {self.api_key}"
        return h


T = TypeVar("T")


@dataclass
class Call(Generic[T]):
    """One request and how to read its answer, so each method's return type follows from its call."""

    method: str
    path: str
    parse: Callable[[bytes], T]
    params: dict[str, Any] | None = None
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    timeout: float | None = None  # seconds, when this call needs longer than the client's own


def _raw(content: bytes) -> bytes:
    return content


_video = msgspec.json.Decoder(Video).decode
_video_list = msgspec.json.Decoder(VideoList).decode
_video_deleted = msgspec.json.Decoder(VideoDeleted).decode
_download_url = msgspec.json.Decoder(DownloadURL).decode
_model_list = msgspec.json.Decoder(VideoModelList).decode


def _clean(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v is not None}


def create_call(request: VideoGenerationRequest | dict[str, Any], idempotency_key: str | None) -> Call[Video]:
    """A create always carries an Idempotency-Key, so a retry can never create or charge twice."""
    if isinstance(request, dict):
        request = msgspec.convert(request, VideoGenerationRequest)
    return Call(
        "POST",
        "/v1/videos",
        _video,
        body=msgspec.json.encode(request),
        headers={"Content-Type": "application/json", "Idempotency-Key": idempotency_key or f"sdk-{uuid.uuid4()}"},
    )


def request_from(model: str, prompt: str, fields: dict[str, Any]) -> VideoGenerationRequest:
    return msgspec.convert({"model": model, "prompt": prompt, **_clean(fields)}, VideoGenerationRequest)


def list_call(
    status: str | list[str] | None, limit: int | None, after: str | None, order: str | None
) -> Call[VideoList]:
    if isinstance(status, list):
        status = ",".join(status)
    return Call(
        "GET",
        "/v1/videos",
        _video_list,
        params=_clean({"status": status, "limit": limit, "after": after, "order": order}),
    )


def get_call(video_id: str) -> Call[Video]:
    return Call("GET", f"/v1/videos/{video_id}", _video)


def content_call(video_id: str, index: int) -> Call[bytes]:
    return Call("GET", f"/v1/videos/{video_id}/content", _raw, params={"index": index})


def download_url_call(video_id: str, index: int, ttl_seconds: int, disposition: str) -> Call[DownloadURL]:
    body = msgspec.json.encode({"index": index, "ttl_seconds": ttl_seconds, "disposition": disposition})
    return Call(
        "POST",
        f"/v1/videos/{video_id}/download_url",
        _download_url,
        body=body,
        headers={"Content-Type": "application/json"},
    )


def cancel_call(video_id: str) -> Call[Video]:
    return Call("POST", f"/v1/videos/{video_id}/cancel", _video)


def delete_call(video_id: str) -> Call[VideoDeleted]:
    return Call("DELETE", f"/v1/videos/{video_id}", _video_deleted)


def models_call() -> Call[VideoModelList]:
    return Call("GET", "/v1/videos/models", _model_list)


def websocket_url(
    base_url: str, kind: str, job_id: str, interval_ms: int | None, close_on_terminal: bool | None
) -> str:
    ws_base = "ws" + base_url[4:] if base_url.startswith("http") else base_url
    query = _clean(
        {
            "interval_ms": interval_ms,
            "close_on_terminal": None if close_on_terminal is None else str(close_on_terminal).lower(),
        }
    )
    return f"{ws_base}/v1/async/{kind}/{job_id}/ws" + (f"?{urlencode(query)}" if query else "")


def should_retry(status: int) -> bool:
    return status in RETRY_STATUSES


def retry_delay(config: ClientConfig, attempt: int, response: httpx.Response) -> float | None:
    """Seconds to wait before retrying ``response``, or None to hand it to the caller."""
    if should_retry(response.status_code) and attempt < config.max_retries:
        return backoff(config, attempt, response.headers.get("retry-after"))
    return None


def transport_delay(config: ClientConfig, attempt: int, exc: httpx.TransportError) -> float:
    """Seconds to wait before retrying after a transport failure; raises once retries are spent."""
    if attempt >= config.max_retries:
        raise errors.APIConnectionError(f"could not reach {config.base_url}: {exc}") from exc
    return backoff(config, attempt, None)


def build_request(
    http: httpx.Client | httpx.AsyncClient, config: ClientConfig, call: Call[Any], headers: dict[str, str] | None
) -> httpx.Request:
    return http.build_request(
        call.method,
        config.base_url + call.path,
        params=call.params,
        content=call.body,
        headers={**config.headers(), **call.headers, **(headers or {})},
        timeout=httpx.USE_CLIENT_DEFAULT if call.timeout is None else call.timeout,
    )


def backoff(config: ClientConfig, attempt: int, retry_after: str | None) -> float:
    """Exponential backoff with full jitter, or the server's Retry-After when it gives one."""
    if retry_after:
        try:
            return min(float(retry_after), 60.0)
        except ValueError:
            pass
    return random.uniform(0, min(config.backoff_max, config.backoff_base * 2**attempt))


def raise_for_error(response: httpx.Response) -> None:
    """Raise the typed error of a read error response."""
    if response.status_code >= 400:
        try:
            body = response.json()
        except ValueError:
            body = None
        raise errors.from_envelope(response.status_code, body, dict(response.headers))


def decode(call: Call[T], response: httpx.Response) -> T:
    raise_for_error(response)
    return call.parse(response.content)


def terminal_error(video: Video) -> errors.JobFailedError:
    detail = f": {video.error.message}" if video.error else ""
    return errors.JobFailedError(f"video {video.id} ended {video.status}{detail}", job=video)


def is_terminal(video: Video) -> bool:
    return video.status in TERMINAL_STATUSES


def wait_interval(video: Video, floor: float, ceiling: float) -> float:
    hint = video.poll_after_seconds if isinstance(video.poll_after_seconds, int) else 2
    return max(floor, min(ceiling, float(hint)))


class Waiter:
    """The clock and the end conditions of one ``wait``; both clients drive it the same way."""

    def __init__(
        self, video_id: str, timeout: float, raise_on_failure: bool, min_interval: float, max_interval: float
    ) -> None:
        self.video_id = video_id
        self.timeout = timeout
        self.raise_on_failure = raise_on_failure
        self.min_interval = min_interval
        self.max_interval = max_interval
        self.deadline = time.monotonic() + timeout
        self.last: Video | None = None

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def finished(self, video: Video) -> Video | None:
        """The video when it is terminal (raising ``JobFailedError`` if asked), else None."""
        self.last = video
        if not is_terminal(video):
            return None
        if self.raise_on_failure and video.status != "completed":
            raise terminal_error(video)
        return video

    def pause(self, video: Video) -> float:
        """How long to sleep before the next poll; raises ``WaitTimeoutError`` past the deadline."""
        left = self.left()
        if left <= 0:
            raise self.timed_out()
        return min(left, wait_interval(video, self.min_interval, self.max_interval))

    def listen_timeout(self) -> float:
        """How long to wait for a websocket message before checking the job over HTTP."""
        return max(0.0, min(self.left(), self.max_interval))

    def timed_out(self) -> errors.WaitTimeoutError:
        status = self.last.status if self.last is not None else "unknown"
        return errors.WaitTimeoutError(f"video {self.video_id} is still {status} after {self.timeout:g}s")


LONG_POLL_SECONDS = 25.0  # a held poll's longest wait: under the idle timeouts of common proxies


class LongPoll:
    """The state of ``wait`` by long polls: the last job seen, its ETag, and how long the poll asked for.

    After a first plain look, each poll asks the gateway to hold it (``?wait=``) until the job moves
    past the version ``If-None-Match`` names. A gateway that answers without an ETag does not know
    long polls (the hosted reference), and one that answers early with no change (its cap of held
    polls is reached) should not be asked again at once: both go back to the ``poll_after_seconds`` pace.
    """

    def __init__(self, video_id: str, timeout: float) -> None:
        self.video_id = video_id
        self.timeout = timeout
        self.video: Video | None = None
        self.etag: str | None = None
        self.asked = 0.0

    def call(self, left: float) -> Call[bytes]:
        """The next poll: held for up to ``left`` seconds (at most ``LONG_POLL_SECONDS``) once there is a tag."""
        path = f"/v1/videos/{self.video_id}"
        if self.video is None or self.etag is None:
            self.asked = 0.0
            return Call("GET", path, _raw)
        self.asked = max(0.1, min(left, LONG_POLL_SECONDS))
        params = {"wait": f"{self.asked:.1f}"}
        headers = {"If-None-Match": self.etag}
        return Call("GET", path, _raw, params=params, headers=headers, timeout=self.asked + self.timeout)

    def answer(self, response: httpx.Response) -> tuple[Video, bool]:
        """The job a poll found, and whether it is news (the first look, or a new version)."""
        if response.status_code == 304 and self.video is not None:
            return self.video, False
        raise_for_error(response)
        video = _video(response.content)
        tag = response.headers.get("etag")
        news = self.video is None or tag is None or tag != self.etag
        self.video, self.etag = video, tag
        return video, news

    def pause(self, waiter: Waiter, video: Video, news: bool, took: float) -> float:
        """Seconds to sleep before the next poll: none after news or a hold that ran its course."""
        if self.etag is not None and (news or (self.asked > 0 and took >= self.asked * 0.9)):
            if waiter.left() <= 0:
                raise waiter.timed_out()
            return 0.0
        return waiter.pause(video)


class StreamMessage(msgspec.Struct):
    """A websocket frame: ``{"type": "job.snapshot" | "job.updated", "data": <Video>}``."""

    type: str
    data: Video | None = None


def stream_url(base_url: str, video_id: str) -> str:
    """The lifecycle stream as an http(s) URL, the form httpx-ws connects to."""
    return f"{base_url}/v1/async/video/{video_id}/ws"


def stream_video(message: str | bytes) -> Video | None:
    """The job a websocket frame carries, or None for frames that carry none (or that we cannot read)."""
    try:
        return msgspec.json.decode(message, type=StreamMessage).data
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


class DownloadInterrupted(errors.APIConnectionError):
    """The body stopped mid-way; the ``.part`` file keeps what arrived."""


@dataclass
class Download:
    """One output being saved: where, how much is already there, and what it must hash to."""

    video_id: str
    index: int
    path: Path
    part: Path
    total: int
    sha256: str

    @classmethod
    def plan(cls, video: Video, path: Path, index: int) -> Download:
        outputs = video.outputs if isinstance(video.outputs, list) else []
        if video.status != "completed" or index >= len(outputs):
            raise errors.NotReadyError(f"video {video.id} is {video.status}; nothing to download yet")
        asset = outputs[index].asset
        if not isinstance(asset, Asset):
            raise errors.NotReadyError(f"video {video.id} output {index} has no stored asset")
        part = path.with_name(path.name + ".part")
        return cls(video.id, index, path, part, asset.bytes, asset.sha256)

    def have(self) -> int:
        """Bytes already in the ``.part`` file; a file longer than the output is started over."""
        have = self.part.stat().st_size if self.part.exists() else 0
        if have > self.total:
            self.part.unlink()
            return 0
        return have

    def call(self) -> Call[bytes]:
        return content_call(self.video_id, self.index)

    def headers(self, have: int) -> dict[str, str] | None:
        # If-Range makes the server send the whole file again should the stored bytes ever differ.
        return {"Range": f"bytes={have}-", "If-Range": f'"{self.sha256}"'} if have else None

    def mode(self, status: int, have: int) -> tuple[str, int]:
        """File mode and starting count for a response: append on 206, start over on 200."""
        return ("ab", have) if status == 206 else ("wb", 0)

    def interrupted(self, done: int, exc: Exception) -> DownloadInterrupted:
        return DownloadInterrupted(
            f"download of {self.video_id} stopped after {done} of {self.total} bytes ({exc}); "
            f"{self.part} keeps them and the next download resumes from there"
        )

    def finish(self) -> Path:
        """Check the sha256 and move the ``.part`` file into place."""
        digest = hashlib.sha256()
        with self.part.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
        if digest.hexdigest() != self.sha256:
            self.part.unlink()
            raise errors.VidgateError(
                f"downloaded bytes do not match sha256 {self.sha256}; the partial file was removed",
                code="checksum_mismatch",
                status=0,
            )
        self.part.replace(self.path)
        return self.path
