"""Outbound fetches to user-given URLs, with an SSRF guard.

A URL is refused when its host resolves to a private, loopback, link-local, multicast, reserved
or metadata address, unless settings allow private URLs. Redirects are followed by hand, each
hop checked again, so a public URL cannot bounce the gateway into the private network.

``check_url`` refuses early, before a request is built. The clients that send (``outbound`` for
httpx, ``providers.http`` for aiohttp) check again where they connect: each connection looks the
name up once through ``resolve`` and dials only addresses that passed, so a name that answers a
public address to the check and a private one to the connection (DNS rebinding) gets nowhere.
Refusals never name the address a host resolved to: the text reaches API responses and logs.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import ipaddress
import socket
from collections.abc import Iterator
from contextvars import ContextVar
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlparse

from vidgate.gateway.providers.base import ReferenceImage

if TYPE_CHECKING:
    import httpx

IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/webp", "image/gif"})
MAX_REDIRECTS = 3
PRIVATE_MESSAGE = "the URL's host resolves to a private or reserved address"

# Whether hosts an upstream names (CDN links of outputs) may be private: the setting, set per
# download by the worker, since provider clients are built before settings reach them.
_private_allowed: ContextVar[bool] = ContextVar("private_urls_allowed", default=False)


class BlockedURL(ValueError):
    """The URL is not one the gateway will fetch or call."""


def _blocked_ip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return bool(
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or (isinstance(ip, ipaddress.IPv4Address) and ip in ipaddress.ip_network("100.64.0.0/10"))
    )


@contextlib.contextmanager
def private_urls(allowed: bool) -> Iterator[None]:
    """Within the block, hosts an upstream names may be private (the ``allow_private_urls`` setting)."""
    token = _private_allowed.set(allowed)
    try:
        yield
    finally:
        _private_allowed.reset(token)


def private_urls_allowed() -> bool:
    return _private_allowed.get()


async def resolve(host: str, port: int, family: int = socket.AF_UNSPEC) -> list[tuple[int, str]]:
    """Every ``(family, address)`` of ``host``: the one name lookup behind the guard (tests replace it)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, family=family, type=socket.SOCK_STREAM)
    return [(info[0], str(info[4][0])) for info in infos]


def ip_literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


async def allowed_addresses(host: str, port: int, family: int = socket.AF_UNSPEC) -> list[tuple[int, str]]:
    """Resolve ``host`` once and return its addresses, or raise ``BlockedURL`` if any is not public.

    One private answer refuses the whole name: trying only the public ones would still let a
    name that mixes both probe the private network. A failed lookup raises ``OSError``, which
    the clients treat as any connection failure.
    """
    addresses: list[tuple[int, str]]
    literal = ip_literal(host)
    if literal is not None:
        addresses = [(socket.AF_INET if literal.version == 4 else socket.AF_INET6, str(literal))]
    else:
        try:
            addresses = await resolve(host, port, family)
        except UnicodeError as exc:
            raise BlockedURL("the URL's host is not a valid name") from exc
    if not addresses or any(_blocked_ip(ipaddress.ip_address(address)) for _, address in addresses):
        raise BlockedURL(PRIVATE_MESSAGE)
    return addresses


async def check_url(url: str, *, allow_private: bool, require_https: bool = True) -> None:
    """Raise ``BlockedURL`` unless ``url`` is http(s) to a public address (or private ones are allowed)."""
    parsed = urlparse(url)
    if parsed.scheme not in ("https", "http") or not parsed.hostname:
        raise BlockedURL("only http(s) URLs are allowed")
    if parsed.scheme == "http" and require_https and not allow_private:
        raise BlockedURL("only https URLs are allowed")
    if allow_private:
        return
    try:
        await allowed_addresses(parsed.hostname, parsed.port or (443 if parsed.scheme == "https" else 80))
    except socket.gaierror as exc:
        raise BlockedURL("the URL's host does not resolve") from exc


def decode_data_url(url: str) -> tuple[bytes, str]:
    header, _, payload = url.partition(",")
    mime = header[5:].split(";", 1)[0] or "application/octet-stream"
    try:
        return base64.b64decode(payload, validate=True), mime
    except (binascii.Error, ValueError) as exc:
        raise BlockedURL("the data: URL is not valid base64") from exc


async def fetch_image(
    client: httpx.AsyncClient,
    role: str,
    url: str,
    *,
    allow_private: bool,
    max_bytes: int,
    types: frozenset[str] = IMAGE_TYPES,
    what: str = "an image (png, jpeg, webp, gif)",
) -> ReferenceImage:
    """Fetch one input reference, checking every redirect hop, its type (one of ``types``, else it
    is not ``what``) and its size.

    ``client`` should come from ``outbound.guarded_client`` so the connection is checked too.
    """
    if url.startswith("data:"):
        data, mime = decode_data_url(url)
    else:
        current = url
        for _ in range(MAX_REDIRECTS + 1):
            await check_url(current, allow_private=allow_private)
            async with client.stream("GET", current, follow_redirects=False) as response:
                if response.is_redirect and "location" in response.headers:
                    current = urljoin(current, response.headers["location"])
                    continue
                if response.status_code != 200:
                    raise BlockedURL(f"fetching the image answered HTTP {response.status_code}")
                mime = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
                chunks, total = [], 0
                async for chunk in response.aiter_bytes():
                    total += len(chunk)
                    if total > max_bytes:
                        raise BlockedURL(f"the image is larger than {max_bytes} bytes")
                    chunks.append(chunk)
                data = b"".join(chunks)
                break
        else:
            raise BlockedURL("too many redirects")
    if mime not in types:
        raise BlockedURL(f"the reference is {mime or 'of no type'}, not {what}")
    if len(data) > max_bytes:
        raise BlockedURL(f"the image is larger than {max_bytes} bytes")
    return ReferenceImage(role=role, url=url, data=data, mime_type=mime)
