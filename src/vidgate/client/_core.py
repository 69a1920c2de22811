"""What the sync and async clients share: configuration, request building, retries, decoding.

Each SDK method is a ``Call`` built here; the two clients only differ in how they send it.
"""

from __future__ import annotations

import os
import random
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
import msgspec

from vidgate import errors
from vidgate.types import (
    TERMINAL_STATUSES,
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


@dataclass
class Call:
    method: str
    path: str
    params: dict[str, Any] | None = None
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    result: type[Any] | None = None


def _clean(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v is not None}


def create_call(request: VideoGenerationRequest | dict[str, Any], idempotency_key: str | None) -> Call:
    """A create always carries an Idempotency-Key, so a retry can never create or charge twice."""
    if isinstance(request, dict):
        request = msgspec.convert(request, VideoGenerationRequest)
    return Call(
        "POST",
        "/v1/videos",
        body=msgspec.json.encode(request),
        headers={"Content-Type": "application/json", "Idempotency-Key": idempotency_key or f"sdk-{uuid.uuid4()}"},
        result=Video,
    )


def request_from(model: str, prompt: str, fields: dict[str, Any]) -> VideoGenerationRequest:
    return msgspec.convert({"model": model, "prompt": prompt, **_clean(fields)}, VideoGenerationRequest)


def list_call(status: str | list[str] | None, limit: int | None, after: str | None, order: str | None) -> Call:
    if isinstance(status, list):
        status = ",".join(status)
    return Call(
        "GET",
        "/v1/videos",
        params=_clean({"status": status, "limit": limit, "after": after, "order": order}),
        result=VideoList,
    )


def get_call(video_id: str) -> Call:
    return Call("GET", f"/v1/videos/{video_id}", result=Video)


def content_call(video_id: str, index: int) -> Call:
    return Call("GET", f"/v1/videos/{video_id}/content", params={"index": index})


def download_url_call(video_id: str, index: int, ttl_seconds: int, disposition: str) -> Call:
    body = msgspec.json.encode({"index": index, "ttl_seconds": ttl_seconds, "disposition": disposition})
    return Call(
        "POST",
        f"/v1/videos/{video_id}/download_url",
        body=body,
        headers={"Content-Type": "application/json"},
        result=DownloadURL,
    )


def cancel_call(video_id: str) -> Call:
    return Call("POST", f"/v1/videos/{video_id}/cancel", result=Video)


def delete_call(video_id: str) -> Call:
    return Call("DELETE", f"/v1/videos/{video_id}", result=VideoDeleted)


def models_call() -> Call:
    return Call("GET", "/v1/videos/models", result=VideoModelList)


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


def backoff(config: ClientConfig, attempt: int, retry_after: str | None) -> float:
    """Exponential backoff with full jitter, or the server's Retry-After when it gives one."""
    if retry_after:
        try:
            return min(float(retry_after), 60.0)
        except ValueError:
            pass
    return random.uniform(0, min(config.backoff_max, config.backoff_base * 2**attempt))


def decode(call: Call, response: httpx.Response) -> Any:
    if response.status_code >= 400:
        try:
            body = response.json()
        except ValueError:
            body = None
        raise errors.from_envelope(response.status_code, body, dict(response.headers))
    if call.result is None:
        return response.content
    return msgspec.json.decode(response.content, type=call.result)


def terminal_error(video: Video) -> errors.JobFailedError:
    detail = f": {video.error.message}" if video.error else ""
    return errors.JobFailedError(f"video {video.id} ended {video.status}{detail}", job=video)


def is_terminal(video: Video) -> bool:
    return video.status in TERMINAL_STATUSES


def wait_interval(video: Video, floor: float, ceiling: float) -> float:
    hint = video.poll_after_seconds if isinstance(video.poll_after_seconds, int) else 2
    return max(floor, min(ceiling, float(hint)))
