"""The synchronous client: ``Client(api_key=…).videos.create(…)`` or the flat ``generate_video`` form."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from vidgate import errors
from vidgate.client import _core as core
from vidgate.types import Asset, DownloadURL, Video, VideoDeleted, VideoGenerationRequest, VideoList, VideoModelList


class Client:
    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        timeout: float = 30.0,
        max_retries: int = 3,
        http_client: httpx.Client | None = None,
    ) -> None:
        self.config = core.ClientConfig.build(base_url, api_key, timeout, max_retries)
        self._http = http_client or httpx.Client(timeout=timeout, trust_env=False)
        self.videos = Videos(self)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send(self, call: core.Call, *, stream: bool = False, headers: dict[str, str] | None = None) -> httpx.Response:
        attempt = 0
        while True:
            request = self._http.build_request(
                call.method,
                self.config.base_url + call.path,
                params=call.params,
                content=call.body,
                headers={**self.config.headers(), **call.headers, **(headers or {})},
            )
            try:
                response = self._http.send(request, stream=stream)
            except httpx.TransportError as exc:
                if attempt >= self.config.max_retries:
                    raise errors.APIConnectionError(f"could not reach {self.config.base_url}: {exc}") from exc
                time.sleep(core.backoff(self.config, attempt, None))
                attempt += 1
                continue
            if core.should_retry(response.status_code) and attempt < self.config.max_retries:
                response.close()
                time.sleep(core.backoff(self.config, attempt, response.headers.get("retry-after")))
                attempt += 1
                continue
            return response

    def request(self, call: core.Call) -> Any:
        response = self._send(call)
        return core.decode(call, response)

    # The spec's flat method names, in Python naming.
    def generate_video(self, request: VideoGenerationRequest | dict[str, Any] | None = None, **fields: Any) -> Video:
        return self.videos.create(request, **fields)

    def list_videos(self, **kw: Any) -> VideoList:
        return self.videos.list(**kw)

    def get_video(self, video_id: str) -> Video:
        return self.videos.get(video_id)

    def get_video_content(self, video_id: str, index: int = 0) -> bytes:
        return self.videos.content(video_id, index=index)

    def get_video_download_url(self, video_id: str, **kw: Any) -> DownloadURL:
        return self.videos.download_url(video_id, **kw)

    def cancel_video(self, video_id: str) -> Video:
        return self.videos.cancel(video_id)

    def delete_video(self, video_id: str) -> VideoDeleted:
        return self.videos.delete(video_id)

    def list_video_models(self) -> VideoModelList:
        return self.videos.list_models()

    def get_async_job_websocket_url(
        self, kind: str, job_id: str, *, interval_ms: int | None = None, close_on_terminal: bool | None = None
    ) -> str:
        return core.websocket_url(self.config.base_url, kind, job_id, interval_ms, close_on_terminal)


class Videos:
    def __init__(self, client: Client) -> None:
        self._c = client

    def create(
        self,
        request: VideoGenerationRequest | dict[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
        **fields: Any,
    ) -> Video:
        if request is None:
            request = core.request_from(fields.pop("model"), fields.pop("prompt"), fields)
        return self._c.request(core.create_call(request, idempotency_key))

    def list(
        self,
        *,
        status: str | list[str] | None = None,
        limit: int | None = None,
        after: str | None = None,
        order: str | None = None,
    ) -> VideoList:
        return self._c.request(core.list_call(status, limit, after, order))

    def get(self, video_id: str) -> Video:
        return self._c.request(core.get_call(video_id))

    def content(self, video_id: str, *, index: int = 0) -> bytes:
        return self._c.request(core.content_call(video_id, index))

    def download_url(
        self, video_id: str, *, index: int = 0, ttl_seconds: int = 900, disposition: str = "attachment"
    ) -> DownloadURL:
        return self._c.request(core.download_url_call(video_id, index, ttl_seconds, disposition))

    def cancel(self, video_id: str) -> Video:
        return self._c.request(core.cancel_call(video_id))

    def delete(self, video_id: str) -> VideoDeleted:
        return self._c.request(core.delete_call(video_id))

    def list_models(self) -> VideoModelList:
        return self._c.request(core.models_call())

    def websocket_url(
        self, video_id: str, *, interval_ms: int | None = None, close_on_terminal: bool | None = None
    ) -> str:
        return self._c.get_async_job_websocket_url(
            "video", video_id, interval_ms=interval_ms, close_on_terminal=close_on_terminal
        )

    def wait(
        self,
        video_id: str,
        *,
        timeout: float = 600.0,
        on_progress: Callable[[Video], None] | None = None,
        raise_on_failure: bool = False,
        min_interval: float = 0.2,
        max_interval: float = 20.0,
    ) -> Video:
        """Poll until terminal, honouring ``poll_after_seconds``; raise ``WaitTimeoutError`` past ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            video = self.get(video_id)
            if on_progress is not None:
                on_progress(video)
            if core.is_terminal(video):
                if raise_on_failure and video.status != "completed":
                    raise core.terminal_error(video)
                return video
            left = deadline - time.monotonic()
            if left <= 0:
                raise errors.WaitTimeoutError(f"video {video_id} is still {video.status} after {timeout:.0f}s")
            time.sleep(min(left, core.wait_interval(video, min_interval, max_interval)))

    def create_and_wait(
        self,
        request: VideoGenerationRequest | dict[str, Any] | None = None,
        *,
        timeout: float = 600.0,
        on_progress: Callable[[Video], None] | None = None,
        raise_on_failure: bool = True,
        **fields: Any,
    ) -> Video:
        video = self.create(request, **fields)
        return self.wait(video.id, timeout=timeout, on_progress=on_progress, raise_on_failure=raise_on_failure)

    def download(
        self, video_id: str, path: str | Path, *, index: int = 0, on_bytes: Callable[[int, int], None] | None = None
    ) -> Path:
        """Stream an output to ``path`` in constant memory, resuming a partial file, and check its sha256."""
        path = Path(path)
        video = self.get(video_id)
        outputs = video.outputs if isinstance(video.outputs, list) else []
        if video.status != "completed" or index >= len(outputs):
            raise errors.NotReadyError(f"video {video_id} is {video.status}; nothing to download yet")
        asset = outputs[index].asset
        if not isinstance(asset, Asset):
            raise errors.NotReadyError(f"video {video_id} output {index} has no stored asset")
        part = path.with_name(path.name + ".part")
        have = part.stat().st_size if part.exists() else 0
        total = asset.bytes
        if have >= total:
            have = 0
            part.unlink()
        headers = {"Range": f"bytes={have}-"} if have else None
        response = self._c._send(core.content_call(video_id, index), stream=True, headers=headers)
        try:
            if response.status_code >= 400:
                response.read()
                core.decode(core.Call("GET", ""), response)
            mode = "ab" if response.status_code == 206 else "wb"
            done = have if mode == "ab" else 0
            with part.open(mode) as fh:
                for chunk in response.iter_bytes(1 << 16):
                    fh.write(chunk)
                    done += len(chunk)
                    if on_bytes is not None:
                        on_bytes(done, total)
        finally:
            response.close()
        return _verify(part, path, asset.sha256)


def _verify(part: Path, path: Path, sha256: str) -> Path:
    digest = hashlib.sha256()
    with part.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    if digest.hexdigest() != sha256:
        part.unlink()
        raise errors.VidgateError(
            f"downloaded bytes do not match sha256 {sha256}; the partial file was removed",
            code="checksum_mismatch",
            status=0,
        )
    part.replace(path)
    return path
