"""The synchronous client: ``Client(api_key=…).videos.create(…)`` or the flat ``generate_video`` form."""

from __future__ import annotations

import queue
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
from httpx_ws import HTTPXWSException, WebSocketSession, connect_ws

from vidgate.client import _core as core
from vidgate.client.files import Files
from vidgate.types import DownloadURL, Video, VideoDeleted, VideoGenerationRequest, VideoList, VideoModelList

T = TypeVar("T")


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
        self.files = Files(self)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send(
        self, call: core.Call[Any], *, stream: bool = False, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        attempt = 0
        while True:
            request = core.build_request(self._http, self.config, call, headers)
            try:
                response = self._http.send(request, stream=stream)
            except httpx.TransportError as exc:
                time.sleep(core.transport_delay(self.config, attempt, exc))
                attempt += 1
                continue
            delay = core.retry_delay(self.config, attempt, response)
            if delay is None:
                return response
            response.close()
            time.sleep(delay)
            attempt += 1

    def request(self, call: core.Call[T]) -> T:
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
        websocket: bool = True,
    ) -> Video:
        """Wait until the job is terminal: on its websocket when the gateway has one, else by long
        polls (``?wait=`` with ``If-None-Match``), or by polling at the ``poll_after_seconds`` pace
        where the gateway does not hold polls. Raises ``WaitTimeoutError`` past ``timeout``."""
        waiter = core.Waiter(video_id, timeout, raise_on_failure, min_interval, max_interval)
        if websocket:
            done = self._listen(waiter, on_progress)
            if done is not None:
                return done
        poll = core.LongPoll(video_id, self._c.config.timeout)
        while True:
            started = time.monotonic()
            video, news = poll.answer(self._c._send(poll.call(waiter.left())))
            if news and on_progress is not None:
                on_progress(video)
            if (done := waiter.finished(video)) is not None:
                return done
            pause = poll.pause(waiter, video, news, time.monotonic() - started)
            if pause > 0:
                time.sleep(pause)

    def _listen(self, waiter: core.Waiter, on_progress: Callable[[Video], None] | None) -> Video | None:
        """The terminal job from the lifecycle websocket, or None when there is none to use (then poll)."""
        url = core.stream_url(self._c.config.base_url, waiter.video_id)
        try:
            with connect_ws(url, self._c._http, headers=self._c.config.headers(), session_class=WebSocketSession) as ws:
                while True:
                    try:
                        video = core.stream_video(ws.receive_text(timeout=waiter.listen_timeout()))
                    except queue.Empty:
                        if waiter.left() <= 0:
                            raise waiter.timed_out() from None
                        video = self.get(waiter.video_id)  # a quiet stream: check, in case an event was lost
                    if video is not None:
                        if on_progress is not None:
                            on_progress(video)
                        if (done := waiter.finished(video)) is not None:
                            return done
                    if waiter.left() <= 0:  # heartbeats alone must not keep a wait alive past its timeout
                        raise waiter.timed_out()
        except (HTTPXWSException, httpx.TransportError):
            return None

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
        """Stream an output to ``path`` in constant memory and check its sha256.

        Bytes land in ``path.part`` first; a download cut short resumes from there with a Range
        request (here, up to ``max_retries`` times, or on the next call).
        """
        plan = core.Download.plan(self.get(video_id), Path(path), index)
        attempt = 0
        while True:
            try:
                self._fetch(plan, on_bytes)
                return plan.finish()
            except core.DownloadInterrupted:
                if attempt >= self._c.config.max_retries:
                    raise
                time.sleep(core.backoff(self._c.config, attempt, None))
                attempt += 1

    def _fetch(self, plan: core.Download, on_bytes: Callable[[int, int], None] | None) -> None:
        have = plan.have()
        if have == plan.total:
            return
        response = self._c._send(plan.call(), stream=True, headers=plan.headers(have))
        try:
            if response.status_code >= 400:
                response.read()
                core.raise_for_error(response)
            mode, done = plan.mode(response.status_code, have)
            with plan.part.open(mode) as fh:
                try:  # unbuffered, so every byte that arrived before a cut is on disk
                    for chunk in response.iter_bytes():
                        fh.write(chunk)
                        done += len(chunk)
                        if on_bytes is not None:
                            on_bytes(done, plan.total)
                except httpx.TransportError as exc:
                    raise plan.interrupted(done, exc) from exc
        finally:
            response.close()
