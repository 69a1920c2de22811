"""httpx clients for user-given URLs (input references, webhooks) that dial only checked addresses.

httpx resolves a name itself when it connects, after ``net.check_url`` looked at it, so a name
can answer the check with a public address and the connection with a private one. Here the
connection does the lookup: every address is checked and only checked ones are dialled. The
request still names the host, so the ``Host`` header and TLS (SNI, certificate) are unchanged.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Iterable
from functools import cache
from typing import Any

import certifi
import httpcore
import httpx

from vidgate.gateway.net import allowed_addresses

DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=5.0)


@cache
def _ssl_context() -> ssl.SSLContext:
    return ssl.create_default_context(cafile=certifi.where())


class _CheckedBackend(httpcore.AsyncNetworkBackend):
    """Connects to the addresses ``net.allowed_addresses`` passed for the host, never to the name."""

    def __init__(self) -> None:
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            async with asyncio.timeout(timeout):
                addresses = await allowed_addresses(host, port)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout("timed out resolving the host") from exc
        except OSError as exc:
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc
        failure: Exception = httpcore.ConnectError("no address to connect to")
        for _, address in addresses:
            left = None if deadline is None else max(deadline - time.monotonic(), 0.0)
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout=left, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        raise failure

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not reachable from user-given URLs")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class CheckedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport over a connection pool whose connections go through ``_CheckedBackend``."""

    def __init__(self, limits: httpx.Limits = DEFAULT_LIMITS) -> None:
        super().__init__(trust_env=False, limits=limits)
        # httpx takes no network backend, so the pool it made is swapped for one with ours; every
        # request goes through ``self._pool`` (httpx's mapping of requests and errors is kept).
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=_ssl_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_CheckedBackend(),
        )


def guarded_client(*, allow_private: bool, timeout: httpx.Timeout, **kwargs: Any) -> httpx.AsyncClient:
    """A client for user-given URLs: with private URLs allowed a plain one, else one that checks each connection."""
    transport = None if allow_private else CheckedTransport()
    return httpx.AsyncClient(transport=transport, timeout=timeout, trust_env=False, **kwargs)
