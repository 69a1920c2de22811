"""Object storage for outputs: local files or any S3-compatible store, behind one API (obstore).

Local files are served with ``sendfile`` from their path; S3 objects are streamed with ranged
GETs, and download links may be the store's own presigned URLs.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import obstore
from obstore.store import LocalStore, S3Store

# Bounded waits: a stalled or unreachable store fails a call within seconds (the API answers 503)
# instead of the client's defaults (30 s a try, retried for up to 3 minutes).
CLIENT_OPTIONS: dict[str, Any] = {"allow_http": True, "connect_timeout": "3s", "read_timeout": "5s"}
RETRY_CONFIG: dict[str, Any] = {"max_retries": 2, "retry_timeout": timedelta(seconds=5)}


class BlobStore:
    def __init__(self, url: str) -> None:
        self.url = url
        parsed = urlparse(url)
        self.root: Path | None = None
        self.prefix = ""
        if parsed.scheme == "file":
            self.root = Path(parsed.path)
            self.root.mkdir(parents=True, exist_ok=True)
            self.store: LocalStore | S3Store = LocalStore(self.root, mkdir=True)
        elif parsed.scheme == "s3":
            self.prefix = parsed.path.strip("/")
            config: dict[str, object] = {}
            endpoint = os.environ.get("AWS_ENDPOINT_URL")
            if endpoint and endpoint.startswith("http://"):
                config["allow_http"] = True
            self.store = S3Store(
                parsed.netloc, config=config or None, client_options=CLIENT_OPTIONS, retry_config=RETRY_CONFIG
            )
        else:
            raise ValueError(f"unsupported blob URL {url!r}: use file:///PATH or s3://BUCKET/PREFIX")

    @property
    def is_local(self) -> bool:
        return self.root is not None

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def local_path(self, key: str) -> Path | None:
        return self.root / key if self.root is not None else None

    async def put_file(self, key: str, path: Path) -> None:
        """Store a finished local file; on the local store this is a rename, not a copy."""
        if self.root is not None:
            dest = self.root / key
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.replace(path, dest)
            except OSError:
                shutil.copyfile(path, dest)
                path.unlink(missing_ok=True)
            return
        await obstore.put_async(self.store, self._key(key), path)
        path.unlink(missing_ok=True)

    async def delete(self, key: str) -> None:
        try:
            await obstore.delete_async(self.store, self._key(key))
        except FileNotFoundError:
            pass

    async def stream(self, key: str, start: int, end: int) -> AsyncIterator[bytes]:
        """Bytes ``[start, end)`` in chunks; the object is opened before this returns, so a store
        outage raises here, while the route can still answer an error, not mid-response."""
        result = await obstore.get_async(self.store, self._key(key), options={"range": (start, end)})

        async def chunks() -> AsyncIterator[bytes]:
            async for chunk in result.stream(min_chunk_size=1 << 18):
                yield bytes(chunk)

        return chunks()

    async def presign(self, key: str, ttl_seconds: int) -> str | None:
        if self.root is not None:
            return None
        return await obstore.sign_async(self.store, "GET", self._key(key), timedelta(seconds=ttl_seconds))

    async def ping(self) -> None:
        if self.root is not None:
            if not self.root.is_dir():
                raise OSError(f"blob root {self.root} is missing")
            return
        await obstore.list_with_delimiter_async(self.store, self.prefix or None)
