"""One HTTP client per upstream, and one mapping of transport and status failures onto ours.

Adapters call ``request`` for every upstream call so timeouts, error classification and
malformed-body handling are the same everywhere. The client is aiohttp: per request it costs a
fraction of the CPU httpx does, and that CPU bounds how many upstream jobs one worker can poll.

The configured upstream is trusted; a host it merely names (an output's CDN link) is not, and
downloads from one go through sessions whose resolver hands the connector only addresses the
SSRF guard passed, unless private URLs are allowed.
"""

from __future__ import annotations

import asyncio
import json as jsonlib
import math
import re
import socket
import ssl
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from functools import cache
from typing import Any
from urllib.parse import urlencode

import aiohttp
import certifi
import orjson
from aiohttp.abc import AbstractResolver, ResolveResult
from multidict import CIMultiDictProxy
from yarl import URL

from vidgate.gateway.net import BlockedURL, allowed_addresses, ip_literal, private_urls_allowed
from vidgate.gateway.providers.base import PollFailed, ProviderConfig, ProviderError, Rejected, UnknownOutcome

MAX_REDIRECTS = 5
REQUEST_ID_HEADERS = ("x-request-id", "request-id", "x-goog-request-id", "cf-ray", "x-amzn-requestid")
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
CHUNK_SIZE = 1 << 16

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
# What httpx escapes in a path and in a query (control characters, which it refuses, escaped too).
_PATH_UNSAFE = re.compile(r'[\x00-\x20\x7f"<>`{}]')
_QUERY_UNSAFE = re.compile(r'[\x00-\x20\x7f"<>]')
# Transport failures: aiohttp's own, socket errors, and URLs that do not parse.
_TRANSPORT_ERRORS = (aiohttp.ClientError, OSError, ValueError)
# Failures before a byte of the request left (no connection, a URL that does not parse): the
# upstream cannot have acted on it. Any other failure may come after the upstream did.
_UNSENT = (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError, ValueError)


@cache
def _ssl_context() -> ssl.SSLContext:
    """Verify against certifi's bundle, as httpx does, not whatever CA store the host ships."""
    return ssl.create_default_context(cafile=certifi.where())


def _parse(url: str) -> URL:
    """``url`` as it will be sent: existing escapes (``%2F`` in a quoted segment) are kept verbatim."""
    if not url.isascii():
        return URL(url)  # IDNA host and UTF-8 escapes; only ever a URL an upstream handed us
    path, sep, query = url.partition("?")
    return URL(_PATH_UNSAFE.sub(_escape, path) + sep + _QUERY_UNSAFE.sub(_escape, query), encoded=True)


def _escape(match: re.Match[str]) -> str:
    return f"%{ord(match[0]):02X}"


def _primitive(value: Any) -> str:
    return "true" if value is True else "false" if value is False else "" if value is None else str(value)


def _form(files: Sequence[tuple[str, tuple[Any, ...]]]) -> aiohttp.FormData:
    """Multipart parts given httpx-style: ``(name, (filename or None, value[, content type]))``."""
    form = aiohttp.FormData(quote_fields=False, default_to_multipart=True)
    for name, (filename, value, *rest) in files:
        if filename is None:
            form.add_field(name, value)
        else:
            form.add_field(name, value, filename=filename, content_type=rest[0] if rest else None)
    return form


class _CheckedResolver(AbstractResolver):
    """Looks a name up once and returns only addresses the SSRF guard passed, so those are what is dialled.

    The connector still connects to the name, so the ``Host`` header and TLS (SNI, certificate)
    are the name's; its DNS cache only ever holds checked answers.
    """

    async def resolve(self, host: str, port: int = 0, family: int = socket.AF_INET) -> list[ResolveResult]:
        flags = socket.AI_NUMERICHOST | socket.AI_NUMERICSERV
        return [
            ResolveResult(hostname=host, host=address, port=port, family=fam, proto=0, flags=flags)
            for fam, address in await allowed_addresses(host, port, family)
        ]

    async def close(self) -> None:
        return None


def _abandon(loop: asyncio.AbstractEventLoop, session: aiohttp.ClientSession) -> None:
    """Release a session made on another loop: closed there if that loop still runs, else dropped."""
    if loop.is_running():
        asyncio.run_coroutine_threadsafe(session.close(), loop)
    else:
        session.detach()


class Client:
    """The sessions for one upstream, each made on first use on the loop that uses it.

    A session is bound to its event loop, and providers are built before the worker's loop runs.
    ``bare`` is a second session with no default headers and no cookies, for hosts the upstream
    merely named (a redirect to a CDN), so the upstream's credentials never reach them.
    ``guarded`` sessions resolve through the SSRF guard, for downloads from such hosts.
    """

    def __init__(self, config: ProviderConfig, base_url: str, headers: Mapping[str, str]) -> None:
        self.base_url = str(URL(base_url.rstrip("/"))).rstrip("/") + "/"
        self.headers = dict(headers)
        self.max_connections = config.max_concurrency
        # httpx's semantics: connect bounds the handshake, the timeout each read and the wait for a
        # pooled connection; nothing caps a long download that keeps moving.
        connect, timeout = config.connect_timeout_seconds, config.timeout_seconds
        self.timeout = aiohttp.ClientTimeout(connect=timeout, sock_connect=connect, sock_read=timeout)
        base = URL(self.base_url)
        self.trusted = (base.host, base.port)
        self._sessions: dict[tuple[bool, bool], tuple[asyncio.AbstractEventLoop, aiohttp.ClientSession]] = {}

    def session(self, *, bare: bool = False, guarded: bool = False) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        key = (bare, guarded)
        if (entry := self._sessions.get(key)) is not None and entry[0] is loop and not entry[1].closed:
            return entry[1]
        if entry is not None:
            _abandon(*entry)
        connector = aiohttp.TCPConnector(
            limit=self.max_connections,
            keepalive_timeout=5.0,
            ssl=_ssl_context(),
            resolver=_CheckedResolver() if guarded else None,
        )
        session = aiohttp.ClientSession(
            connector=connector,
            headers=None if bare else self.headers,
            timeout=self.timeout,
            trust_env=False,
            cookie_jar=aiohttp.DummyCookieJar() if bare else None,
        )
        self._sessions[key] = (loop, session)
        return session

    def url(self, url: str, params: Mapping[str, Any] | None = None) -> URL:
        """A relative ``url`` goes under the base path (``/v1`` + ``/videos`` is ``/v1/videos``)."""
        if url.startswith("/") or not _SCHEME.match(url):
            url = self.base_url + url.lstrip("/")
        if params:
            url += ("&" if "?" in url else "?") + urlencode({k: _primitive(v) for k, v in params.items()})
        return _parse(url)

    async def aclose(self) -> None:
        loop = asyncio.get_running_loop()
        sessions, self._sessions = self._sessions, {}
        for owner, session in sessions.values():
            if owner is loop:
                await session.close()
            else:
                _abandon(owner, session)


@dataclass(frozen=True, slots=True)
class Response:
    """What adapters read of an answer: the status, the headers (case-insensitive) and the body."""

    status_code: int
    headers: CIMultiDictProxy[str]
    content: bytes


def make_client(config: ProviderConfig, *, default_base_url: str, headers: Mapping[str, str] = {}) -> Client:
    """A client for one upstream; it never follows redirects and ignores proxy environment."""
    return Client(config, config.base_url or default_base_url, headers)


def request_id_of(response: Response | aiohttp.ClientResponse) -> str | None:
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
    client: Client,
    method: str,
    url: str,
    *,
    phase: str,
    expect: tuple[int, ...] = (200, 201, 202),
    json: Any = None,
    files: Any = None,
    params: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> tuple[Any, Response]:
    """Send one request and decode its JSON body.

    ``phase`` is ``"submit"`` (failures raise ``Rejected``, which routing may fail over on) or
    anything else (failures raise ``PollFailed``, and the job is kept for the next poll). A submit
    that was sent but got no whole answer (timeout, reset, a garbled 2xx) raises ``UnknownOutcome``:
    the upstream may have made the job, so it must be reconciled, not failed over.
    """
    error_cls: type[ProviderError] = Rejected if phase == "submit" else PollFailed
    unsure_cls: type[ProviderError] = UnknownOutcome if phase == "submit" else PollFailed
    data: bytes | aiohttp.FormData | None = None
    ctype = ""
    if files:
        data = _form(files)  # it sets its own Content-Type with the boundary
    elif json is not None:  # encoded as httpx encodes it, so request bodies stay byte-identical
        data = jsonlib.dumps(json, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
        ctype = "application/json"
    sent = dict(headers or {})
    if ctype and not any(k.lower() == "content-type" for k in sent):
        sent["Content-Type"] = ctype
    try:
        target = client.url(url, params)
        async with client.session().request(method, target, data=data, headers=sent, allow_redirects=False) as raw:
            response = Response(raw.status, raw.headers, await raw.read())
    except TimeoutError as exc:
        cls = error_cls if isinstance(exc, _UNSENT) else unsure_cls
        raise cls(f"upstream timed out during {phase}", retryable=True, code="upstream_timeout") from exc
    except _TRANSPORT_ERRORS as exc:
        cls = error_cls if isinstance(exc, _UNSENT) else unsure_cls
        raise cls(f"upstream unreachable during {phase}: {exc or type(exc).__name__}", retryable=True) from exc
    rid = request_id_of(response)
    if response.status_code == 204 or not response.content:
        body: Any = None
    else:
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError as exc:
            if response.status_code in expect:
                raise unsure_cls(
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
        wait = retry_after(response.headers.get("retry-after"))
        raise error_cls(message, retryable=retryable, status_code=status, request_id=rid, code=code, retry_after=wait)
    return body, response


def retry_after(value: str | None) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delta seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - time.time()
    return max(0.0, seconds) if math.isfinite(seconds) else None


def require(body: Any, *keys: str, phase: str = "poll") -> Any:
    """Walk ``keys`` into a decoded body, raising a retryable failure when the shape is wrong.

    On submit the body is a 2xx answer, so a wrong shape leaves the outcome unknown.
    """
    value = body
    for key in keys:
        if not isinstance(value, dict) or key not in value:
            error_cls = UnknownOutcome if phase == "submit" else PollFailed
            raise error_cls(f"upstream body lacks {'.'.join(keys)}", retryable=True)
        value = value[key]
    return value


def submitted_id(body: Any, key: str, missing: str) -> str:
    """The id a submit answer names under ``key``; a 2xx without one leaves the outcome unknown."""
    value = require(body, key, phase="submit")
    if not isinstance(value, str) or not value:
        raise UnknownOutcome(missing, retryable=True)
    return value


async def poll_status(client: Client, path: str, headers: Mapping[str, str]) -> tuple[Any, Response, Any]:
    """GET one job's state (only a 200 will do) and return its body, the response and its ``status``."""
    data, response = await request(client, "GET", path, phase="poll", expect=(200,), headers=headers)
    return data, response, require(data, "status")


async def stream_url(
    client: Client, url: str, headers: Mapping[str, str] = {}, *, follow_redirects: bool = True
) -> AsyncIterator[bytes]:
    """Stream a download in chunks of up to 64 KiB, following redirects by hand (signed CDN links redirect).

    A hop to another host goes out on the bare session: the upstream's credentials (default
    headers of ``client`` and ``headers``) never travel to a host the upstream merely named.
    A hop to any host but the configured upstream's is checked by the SSRF guard, unless
    ``net.private_urls`` allows private addresses; a refused one is final, not retried.
    """
    try:
        current = _parse(url) if _SCHEME.match(url) else _parse(client.base_url).join(_parse(url))
        origin = (current.host, current.port)
        for _ in range(MAX_REDIRECTS + 1):
            same_host = (current.host, current.port) == origin
            guarded = (current.host, current.port) != client.trusted and not private_urls_allowed()
            if guarded and current.host and ip_literal(current.host):  # the connector never resolves these
                await allowed_addresses(current.host, current.port or 0)
            session = client.session(bare=not same_host, guarded=guarded)
            sent = dict(headers) if same_host else None
            async with session.get(current, headers=sent, allow_redirects=False) as response:
                location = response.headers.get("location")
                if follow_redirects and location and response.status in REDIRECT_STATUSES:
                    current = current.join(_parse(location))
                    continue
                if response.status != 200:
                    await response.read()
                    raise PollFailed(
                        f"output download answered {response.status}",
                        retryable=response.status >= 500 or response.status == 429,
                        status_code=response.status,
                        request_id=request_id_of(response),
                    )
                async for chunk in response.content.iter_chunked(CHUNK_SIZE):
                    yield chunk
                return
        raise PollFailed("output download redirected too many times", retryable=False)
    except BlockedURL as exc:
        raise PollFailed(f"output download refused: {exc}", retryable=False) from exc
    except (TimeoutError, *_TRANSPORT_ERRORS) as exc:
        raise PollFailed(f"output download failed: {exc or type(exc).__name__}", retryable=True) from exc
