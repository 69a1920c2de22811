"""The base every absolute URL in an answer starts with: the public URL, or the request's own origin.

With ``VIDGATE_PUBLIC_URL`` set, every URL starts with it (a path prefix included, for a gateway
served under one). Without it, a request's URLs use the scheme and ``Host`` it arrived with; a
reverse proxy's ``X-Forwarded-Proto`` and ``X-Forwarded-Host`` replace those only when the peer is a
trusted proxy (``VIDGATE_TRUSTED_PROXIES``), since anyone else could send them. A job stores the base
it was created through, so its events and webhooks, which have no request, carry the same URLs.

The poll reads the base from its raw ASGI scope on every call: an answer for an origin already seen
is one dictionary lookup.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from typing import Any

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_HOST = re.compile(rb"(\[[0-9A-Fa-f:.]{2,45}\]|[A-Za-z0-9._-]{1,253})(:[0-9]{1,5})?\Z")
_SCHEMES = {"http": "http", "https": "https", "ws": "http", "wss": "https"}
_PROTOS = {b"http": "http", b"https": "https"}
_DEFAULT_PORTS = {"http": 80, "https": 443}
_KEEP = 1024  # origins (and peers) remembered; a client sending random hosts only refills it


def parse_networks(spec: str) -> tuple[Network, ...] | None:
    """``VIDGATE_TRUSTED_PROXIES``: addresses or CIDRs, comma-separated; None for ``*`` (any peer)."""
    items = [part.strip() for part in spec.split(",") if part.strip()]
    if "*" in items:
        return None
    try:
        return tuple(ipaddress.ip_network(item, strict=False) for item in items)
    except ValueError as exc:
        raise ValueError(f"VIDGATE_TRUSTED_PROXIES: {exc}") from None


def public_url(value: str) -> str:
    """``VIDGATE_PUBLIC_URL`` without its trailing slash; an http(s) URL with no query, or empty."""
    value = value.strip().rstrip("/")
    if value and (not value.startswith(("http://", "https://")) or "?" in value or "#" in value):
        raise ValueError(f"VIDGATE_PUBLIC_URL must be an http:// or https:// URL, not {value!r}")
    return value


_WEBSOCKET_BASES: dict[str, str] = {}


def websocket_base(base: str) -> str:
    """``base`` with its scheme swapped for the websocket one (``https`` → ``wss``)."""
    ws = _WEBSOCKET_BASES.get(base)
    if ws is None:
        ws = "wss://" + base[8:] if base.startswith("https://") else "ws://" + base[7:] if base else base
        if len(_WEBSOCKET_BASES) >= _KEEP:
            _WEBSOCKET_BASES.clear()
        _WEBSOCKET_BASES[base] = ws
    return ws


class BaseURL:
    """Resolves the base of a request's URLs, remembering what it worked out."""

    __slots__ = ("_origins", "_peers", "fixed", "networks")

    def __init__(self, public: str = "", trusted: Iterable[Network] | None = ()) -> None:
        self.fixed = public_url(public)
        self.networks = None if trusted is None else tuple(trusted)
        self._origins: dict[tuple[str, bytes], str] = {}
        self._peers: dict[str, bool] = {}

    def of(self, scope: Any) -> str:
        """The base for a Starlette request's or websocket's scope."""
        if self.fixed:
            return self.fixed
        host = proto = forwarded = None
        for name, value in scope["headers"]:
            if name == b"host":
                host = value
            elif name == b"x-forwarded-proto":
                proto = value
            elif name == b"x-forwarded-host":
                forwarded = value
        return self.resolve(scope, host, proto, forwarded)

    def resolve(self, scope: Any, host: bytes | None, proto: bytes | None, forwarded: bytes | None) -> str:
        """The base from headers already read off ``scope`` (the poll reads them with the others it needs)."""
        if self.fixed:
            return self.fixed
        scheme = _SCHEMES.get(scope.get("scheme", "http"), "http")
        if (proto is not None or forwarded is not None) and self.trusts(scope.get("client")):
            if proto is not None:
                scheme = _PROTOS.get(proto.split(b",")[0].strip().lower(), scheme)
            if forwarded is not None:
                host = forwarded.split(b",")[0].strip()
        if host is None:
            return self._server(scheme, scope.get("server"))
        key = (scheme, host)
        base = self._origins.get(key)
        if base is None:
            if not _HOST.match(host):
                return self._server(scheme, scope.get("server"))
            base = f"{scheme}://{host.decode('ascii').lower()}"
            if len(self._origins) >= _KEEP:
                self._origins.clear()
            self._origins[key] = base
        return base

    def trusts(self, client: Any) -> bool:
        """Whether the peer may speak for the client (a reverse proxy); a unix socket's has no address."""
        if self.networks is None:
            return True
        if not client or not self.networks:
            return False
        peer = client[0]
        known = self._peers.get(peer)
        if known is None:
            try:
                address = ipaddress.ip_address(peer)
            except ValueError:
                known = False
            else:
                known = any(address in network for network in self.networks)
            if len(self._peers) >= _KEEP:
                self._peers.clear()
            self._peers[peer] = known
        return known

    @staticmethod
    def _server(scheme: str, server: Any) -> str:
        """No Host (HTTP/1.0) or one that is not a host name: the address the request came in on."""
        if not server:
            return f"{scheme}://localhost"
        name, port = server[0], server[1]
        name = f"[{name}]" if ":" in name else name
        return f"{scheme}://{name}" + ("" if port in (None, _DEFAULT_PORTS[scheme]) else f":{port}")
