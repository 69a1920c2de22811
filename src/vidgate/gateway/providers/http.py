"""One HTTP client per upstream, and one mapping of transport and status failures onto ours.

Adapters call ``request`` for every upstream call so timeouts, error classification and
malformed-body handling are the same everywhere.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx
import orjson

from vidgate.gateway.providers.base import PollFailed, ProviderConfig, ProviderError, Rejected

MAX_REDIRECTS = 5
REQUEST_ID_HEADERS = ("x-request-id", "request-id", "x-goog-request-id", "cf-ray", "x-amzn-requestid")


def make_client(config: ProviderConfig, *, default_base_url: str, headers: Mapping[str, str] = {}) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` for one upstream, never following redirects to other hosts."""
    timeout = httpx.Timeout(config.timeout_seconds, connect=config.connect_timeout_seconds)
    limits = httpx.Limits(max_connections=config.max_concurrency, max_keepalive_connections=config.max_concurrency)
    return httpx.AsyncClient(
        base_url=(config.base_url or default_base_url).rstrip("/"),
        timeout=timeout,
        limits=limits,
        headers=dict(headers),
        follow_redirects=False,
        trust_env=False,
    )


def request_id_of(response: httpx.Response) -> str | None:
    for name in REQUEST_ID_HEADERS:
        if value := response.headers.get(name):
            return value
    return None


def _message_of(body: Any, fallback: str) -> str:
    """Pull a human message out of the many error shapes upstreams use."""
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict):
            for key in ("message", "msg", "detail"):
                if isinstance(err.get(key), str):
                    return err[key]
        if isinstance(err, str):
            return err
        for key in ("message", "detail", "msg", "error_message", "base_resp"):
            value = body.get(key)
            if isinstance(value, str):
                return value
            if isinstance(value, dict) and isinstance(value.get("status_msg"), str):
                return value["status_msg"]
    return fallback


async def request(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    phase: str,
    expect: tuple[int, ...] = (200, 201, 202),
    **kwargs: Any,
) -> tuple[Any, httpx.Response]:
    """Send one request and decode its JSON body.

    ``phase`` is ``"submit"`` (failures raise ``Rejected``, which routing may fail over on) or
    anything else (failures raise ``PollFailed``, and the job is kept for the next poll).
    """
    error_cls: type[ProviderError] = Rejected if phase == "submit" else PollFailed
    try:
        response = await client.request(method, url, **kwargs)
    except httpx.TimeoutException as exc:
        raise error_cls(f"upstream timed out during {phase}", retryable=True, code="upstream_timeout") from exc
    except httpx.TransportError as exc:
        raise error_cls(f"upstream unreachable during {phase}: {exc}", retryable=True) from exc
    rid = request_id_of(response)
    if response.status_code == 204 or not response.content:
        body: Any = None
    else:
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError as exc:
            if response.status_code in expect:
                raise error_cls(
                    f"upstream sent a malformed body during {phase}",
                    retryable=True,
                    request_id=rid,
                    status_code=response.status_code,
                ) from exc
            body = None
    if response.status_code not in expect:
        status = response.status_code
        retryable = status in (408, 409, 425, 429) or status >= 500
        message = _message_of(body, f"upstream answered {status} during {phase}")
        code = "upstream_rate_limited" if status == 429 else "upstream_error"
        raise error_cls(message, retryable=retryable, status_code=status, request_id=rid, code=code)
    return body, response


def require(body: Any, *keys: str, phase: str = "poll") -> Any:
    """Walk ``keys`` into a decoded body, raising a retryable failure when the shape is wrong."""
    value = body
    for key in keys:
        if not isinstance(value, dict) or key not in value:
            error_cls = Rejected if phase == "submit" else PollFailed
            raise error_cls(f"upstream body lacks {'.'.join(keys)}", retryable=True)
        value = value[key]
    return value


async def stream_url(
    client: httpx.AsyncClient, url: str, headers: Mapping[str, str] = {}, *, follow_redirects: bool = True
) -> AsyncIterator[bytes]:
    """Stream a download, following redirects by hand (signed CDN links redirect).

    A hop to another host goes out on a bare client: the upstream's credentials (default headers
    of ``client`` and ``headers``) never travel to a host the upstream merely named.
    """
    current = httpx.URL(url) if url.startswith(("http://", "https://")) else client.base_url.join(url)
    origin = current.netloc
    bare: httpx.AsyncClient | None = None
    try:
        for _ in range(MAX_REDIRECTS + 1):
            same_host = current.netloc == origin
            sender = (
                client if same_host else (bare := bare or httpx.AsyncClient(timeout=client.timeout, trust_env=False))
            )
            request = sender.build_request("GET", current, headers=dict(headers) if same_host else None)
            response = await sender.send(request, stream=True)
            try:
                if response.is_redirect and follow_redirects and "location" in response.headers:
                    current = current.join(response.headers["location"])
                    continue
                if response.status_code != 200:
                    await response.aread()
                    raise PollFailed(
                        f"output download answered {response.status_code}",
                        retryable=response.status_code >= 500 or response.status_code == 429,
                        status_code=response.status_code,
                        request_id=request_id_of(response),
                    )
                async for chunk in response.aiter_bytes(1 << 16):
                    yield chunk
                return
            finally:
                await response.aclose()
        raise PollFailed("output download redirected too many times", retryable=False)
    except httpx.TransportError as exc:
        raise PollFailed(f"output download failed: {exc}", retryable=True) from exc
    finally:
        if bare is not None:
            await bare.aclose()
