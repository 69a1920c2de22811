"""Uploads: ``client.files.create(path_or_bytes, purpose=…)``, ``get``, ``list``, ``delete``, sync and async.

A file given by its path is streamed from disk as the request is sent (httpx's multipart streams a
file object), never read whole; bytes are sent as they are. An upload is answered with what the
gateway found the bytes to be, and its ``id`` goes into an input reference as ``file_id``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING

import httpx
import msgspec

from vidgate.client import _core as core
from vidgate.types import FileDeleted, FileList, UploadedFile

if TYPE_CHECKING:
    from vidgate.client.aio import AsyncClient
    from vidgate.client.sync import Client

Source = str | Path | bytes
_file = msgspec.json.Decoder(UploadedFile).decode
_file_list = msgspec.json.Decoder(FileList).decode
_file_deleted = msgspec.json.Decoder(FileDeleted).decode


def get_call(file_id: str) -> core.Call[UploadedFile]:
    return core.Call("GET", f"/v1/files/{file_id}", _file)


def list_call(limit: int | None, after: str | None, order: str | None) -> core.Call[FileList]:
    params = {k: v for k, v in {"limit": limit, "after": after, "order": order}.items() if v is not None}
    return core.Call("GET", "/v1/files", _file_list, params=params)


def delete_call(file_id: str) -> core.Call[FileDeleted]:
    return core.Call("DELETE", f"/v1/files/{file_id}", _file_deleted)


@contextlib.contextmanager
def _opened(source: Source, filename: str | None) -> Iterator[tuple[str, IO[bytes] | bytes]]:
    """The part's file name and its content: an open file for a path, the bytes themselves otherwise."""
    if isinstance(source, bytes):
        yield filename or "upload", source
        return
    path = Path(source)
    with path.open("rb") as fh:
        yield filename or path.name, fh


def _request(
    http: httpx.Client | httpx.AsyncClient,
    config: core.ClientConfig,
    name: str,
    content: IO[bytes] | bytes,
    purpose: str | None,
) -> httpx.Request:
    if not isinstance(content, bytes):
        content.seek(0)  # a retry sends the file again from its start
    return http.build_request(
        "POST",
        config.base_url + "/v1/files",
        files={"file": (name, content, "application/octet-stream")},
        data={"purpose": purpose} if purpose is not None else None,
        headers=config.headers(),
    )


def _parsed(response: httpx.Response) -> UploadedFile:
    core.raise_for_error(response)
    return _file(response.content)


class Files:
    """``client.files``: the caller's uploads."""

    def __init__(self, client: Client) -> None:
        self._c = client

    def create(self, file: Source, *, purpose: str | None = None, filename: str | None = None) -> UploadedFile:
        """Upload ``file`` (a path, or bytes) and return what the gateway found it to be."""
        c = self._c
        attempt = 0
        with _opened(file, filename) as (name, content):
            while True:
                try:
                    response = c._http.send(_request(c._http, c.config, name, content, purpose))
                except httpx.TransportError as exc:
                    time.sleep(core.transport_delay(c.config, attempt, exc))
                    attempt += 1
                    continue
                delay = core.retry_delay(c.config, attempt, response)
                if delay is None:
                    return _parsed(response)
                time.sleep(delay)
                attempt += 1

    def get(self, file_id: str) -> UploadedFile:
        return self._c.request(get_call(file_id))

    def list(self, *, limit: int | None = None, after: str | None = None, order: str | None = None) -> FileList:
        return self._c.request(list_call(limit, after, order))

    def delete(self, file_id: str) -> FileDeleted:
        return self._c.request(delete_call(file_id))


class AsyncFiles:
    """``async_client.files``: the caller's uploads."""

    def __init__(self, client: AsyncClient) -> None:
        self._c = client

    async def create(self, file: Source, *, purpose: str | None = None, filename: str | None = None) -> UploadedFile:
        """Upload ``file`` (a path, or bytes) and return what the gateway found it to be."""
        c = self._c
        attempt = 0
        with _opened(file, filename) as (name, content):
            while True:
                try:
                    response = await c._http.send(_request(c._http, c.config, name, content, purpose))
                except httpx.TransportError as exc:
                    await asyncio.sleep(core.transport_delay(c.config, attempt, exc))
                    attempt += 1
                    continue
                delay = core.retry_delay(c.config, attempt, response)
                if delay is None:
                    return _parsed(response)
                await asyncio.sleep(delay)
                attempt += 1

    async def get(self, file_id: str) -> UploadedFile:
        return await self._c.request(get_call(file_id))

    async def list(self, *, limit: int | None = None, after: str | None = None, order: str | None = None) -> FileList:
        return await self._c.request(list_call(limit, after, order))

    async def delete(self, file_id: str) -> FileDeleted:
        return await self._c.request(delete_call(file_id))
