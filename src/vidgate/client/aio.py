"""The asynchronous client: ``async with AsyncClient(…) as c: await c.videos.create(…)``.

The same surface as ``Client``; every request, retry rule and decoding step comes from ``_core``.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
from httpx_ws import AsyncWebSocketSession, HTTPXWSException, aconnect_ws

from vidgate import errors
from vidgate.client import _core as core
from vidgate.client.files import AsyncFiles
from vidgate.types import DownloadURL, Video, VideoDeleted, VideoGenerationRequest, VideoList, VideoModelList

ProgressCallback = Callable[[Video], Awaitable[None] | None]
T = TypeVar("T")


class AsyncClient:
    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        timeout: float = 30.0,
        max_retries: int = 3,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self.config = core.ClientConfig.build(base_url, api_key, timeout, max_retries)
        self._http = http_client or httpx.AsyncClient(timeout=timeout, trust_env=False)
        self.videos = AsyncVideos(self)
        self.files = AsyncFiles(self)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _send(
        self, call: core.Call[Any], *, stream: bool = False, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        attempt = 0
        while True:
            request = core.build_request(self._http, self.config, call, headers)
            try:
                response = await self._http.send(request, stream=stream)
            except httpx.TransportError as exc:
                await asyncio.sleep(core.transport_delay(self.config, attempt, exc))
                attempt += 1
                continue
            delay = core.retry_delay(self.config, attempt, response)
            if delay is None:
                return response
            await response.aclose()
            await asyncio.sleep(delay)
            attempt += 1

    async def request(self, call: core.Call[T]) -> T:
        response = await self._send(call)
        return core.decode(call, response)

    # The spec's flat method names, in Python naming.
    async def generate_video(
        self, request: VideoGenerationRequest | dict[str, Any] | None = None, **fields: Any
    ) -> Video:
        return await self.videos.create(request, **fields)

    async def list_videos(self, **kw: Any) -> VideoList:
        return await self.videos.list(**kw)

    async def get_video(self, video_id: str) -> Video:
        return await self.videos.get(video_id)

    async def get_video_content(self, video_id: str, index: int = 0) -> bytes:
        return await self.videos.content(video_id, index=index)

    async def get_video_download_url(self, video_id: str, **kw: Any) -> DownloadURL:
        return await self.videos.download_url(video_id, **kw)

    async def cancel_video(self, video_id: str) -> Video:
        return await self.videos.cancel(video_id)

    async def delete_video(self, video_id: str) -> VideoDeleted:
        return await self.videos.delete(video_id)

    async def list_video_models(self) -> VideoModelList:
        return await self.videos.list_models()

    def get_async_job_websocket_url(
        self, kind: str, job_id: str, *, interval_ms: int | None = None, close_on_terminal: bool | None = None
    ) -> str:
        return core.websocket_url(self.config.base_url, kind, job_id, interval_ms, close_on_terminal)


async def _report(on_progress: ProgressCallback | None, video: Video) -> None:
    if on_progress is not None:
        result = on_progress(video)
        if inspect.isawaitable(result):
            await result


class AsyncVideos:
    def __init__(self, client: AsyncClient) -> None:
        self._c = client

    async def create(
        self,
        request: VideoGenerationRequest | dict[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
        **fields: Any,
    ) -> Video:
        if request is None:
            request = core.request_from(fields.pop("model"), fields.pop("prompt"), fields)
        return await self._c.request(core.create_call(request, idempotency_key))

    async def list(
        self,
        *,
        status: str | list[str] | None = None,
        limit: int | None = None,
        after: str | None = None,
        order: str | None = None,
    ) -> VideoList:
        return await self._c.request(core.list_call(status, limit, after, order))

    async def get(self, video_id: str) -> Video:
        return await self._c.request(core.get_call(video_id))

    async def content(self, video_id: str, *, index: int = 0) -> bytes:
        return await self._c.request(core.content_call(video_id, index))

    async def download_url(
        self, video_id: str, *, index: int = 0, ttl_seconds: int = 900, disposition: str = "attachment"
    ) -> DownloadURL:
        return await self._c.request(core.download_url_call(video_id, index, ttl_seconds, disposition))

    async def cancel(self, video_id: str) -> Video:
        return await self._c.request(core.cancel_call(video_id))

    async def delete(self, video_id: str) -> VideoDeleted:
        return await self._c.request(core.delete_call(video_id))

    async def list_models(self) -> VideoModelList:
        return await self._c.request(core.models_call())

    def websocket_url(
        self, video_id: str, *, interval_ms: int | None = None, close_on_terminal: bool | None = None
    ) -> str:
        return self._c.get_async_job_websocket_url(
            "video", video_id, interval_ms=interval_ms, close_on_terminal=close_on_terminal
        )

    async def wait(
        self,
        video_id: str,
        *,
        timeout: float = 600.0,
        on_progress: ProgressCallback | None = None,
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
            done = await self._listen(waiter, on_progress)
            if done is not None:
                return done
        poll = core.LongPoll(video_id, self._c.config.timeout)
        while True:
            started = time.monotonic()
            video, news = poll.answer(await self._c._send(poll.call(waiter.left())))
            if news:
                await _report(on_progress, video)
            if (done := waiter.finished(video)) is not None:
                return done
            pause = poll.pause(waiter, video, news, time.monotonic() - started)
            if pause > 0:
                await asyncio.sleep(pause)

    async def _listen(self, waiter: core.Waiter, on_progress: ProgressCallback | None) -> Video | None:
        """The terminal job from the lifecycle websocket, or None when there is none to use (then poll).

        httpx-ws wraps what escapes its session in an ExceptionGroup, so the outcome (a job or an
        error to raise) is kept in a variable inside the session and acted on outside it.
        """
        url = core.stream_url(self._c.config.base_url, waiter.video_id)
        outcome: Video | errors.VidgateError | None = None
        try:
            async with aconnect_ws(
                url, self._c._http, headers=self._c.config.headers(), session_class=AsyncWebSocketSession
            ) as ws:
                try:
                    outcome = await self._receive(ws, waiter, on_progress)
                except errors.VidgateError as exc:
                    outcome = exc
                except HTTPXWSException:
                    outcome = None
        except (HTTPXWSException, httpx.TransportError, ExceptionGroup):
            if outcome is None:
                return None
        if isinstance(outcome, errors.VidgateError):
            raise outcome
        return outcome

    async def _receive(
        self, ws: AsyncWebSocketSession, waiter: core.Waiter, on_progress: ProgressCallback | None
    ) -> Video:
        while True:
            try:
                video = core.stream_video(await ws.receive_text(timeout=waiter.listen_timeout()))
            except TimeoutError:
                if waiter.left() <= 0:
                    raise waiter.timed_out() from None
                video = await self.get(waiter.video_id)  # a quiet stream: check, in case an event was lost
            if video is not None:
                await _report(on_progress, video)
                if (done := waiter.finished(video)) is not None:
                    return done
            if waiter.left() <= 0:  # heartbeats alone must not keep a wait alive past its timeout
                raise waiter.timed_out()

    async def create_and_wait(
        self,
        request: VideoGenerationRequest | dict[str, Any] | None = None,
        *,
        timeout: float = 600.0,
        on_progress: ProgressCallback | None = None,
        raise_on_failure: bool = True,
        **fields: Any,
    ) -> Video:
        video = await self.create(request, **fields)
        return await self.wait(video.id, timeout=timeout, on_progress=on_progress, raise_on_failure=raise_on_failure)

    async def download(
        self, video_id: str, path: str | Path, *, index: int = 0, on_bytes: Callable[[int, int], None] | None = None
    ) -> Path:
        """Stream an output to ``path`` in constant memory and check its sha256.

        Bytes land in ``path.part`` first; a download cut short resumes from there with a Range
        request (here, up to ``max_retries`` times, or on the next call).
        """
        plan = core.Download.plan(await self.get(video_id), Path(path), index)
        attempt = 0
        while True:
            try:
                await self._fetch(plan, on_bytes)
                return await asyncio.to_thread(plan.finish)
            except core.DownloadInterrupted:
                if attempt >= self._c.config.max_retries:
                    raise
                await asyncio.sleep(core.backoff(self._c.config, attempt, None))
                attempt += 1

    async def _fetch(self, plan: core.Download, on_bytes: Callable[[int, int], None] | None) -> None:
        have = plan.have()
        if have == plan.total:
            return
        response = await self._c._send(plan.call(), stream=True, headers=plan.headers(have))
        try:
            if response.status_code >= 400:
                await response.aread()
                core.raise_for_error(response)
            mode, done = plan.mode(response.status_code, have)
            with plan.part.open(mode) as fh:
                try:  # unbuffered, so every byte that arrived before a cut is on disk
                    async for chunk in response.aiter_bytes():
                        fh.write(chunk)
                        done += len(chunk)
                        if on_bytes is not None:
                            on_bytes(done, plan.total)
                except httpx.TransportError as exc:
                    raise plan.interrupted(done, exc) from exc
        finally:
            await response.aclose()
