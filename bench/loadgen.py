"""A fixed-rate (open-loop) load generator and a closed-loop one, on raw asyncio connections."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass
from typing import Any

from bench.report import percentile, summary_ms


class _Conn(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection: a request at a time, responses framed by Content-Length."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.waiter: asyncio.Future[int] | None = None
        self.head_end = -1
        self.length = -1
        self.status = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.length < 0:
            i = self.buf.find(b"\r\n\r\n")
            if i < 0:
                return
            head = bytes(self.buf[:i]).lower()
            self.status = int(head[9:12])
            m = head.find(b"\r\ncontent-length:")
            if m < 0:
                raise RuntimeError("the load generator needs responses with Content-Length")
            end = head.find(b"\r\n", m + 2)
            self.length = int(head[m + 17 : end if end > 0 else None])
            self.head_end = i + 4
        if len(self.buf) - self.head_end >= self.length:
            del self.buf[: self.head_end + self.length]
            self.length = -1
            waiter, self.waiter = self.waiter, None
            if waiter is not None and not waiter.done():
                waiter.set_result(self.status)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("the server closed the connection"))

    async def request(self, data: bytes) -> int:
        self.waiter = asyncio.get_running_loop().create_future()
        assert self.transport is not None
        self.transport.write(data)
        return await self.waiter


def http_request(method: str, path: str, port: int, headers: dict[str, str] | None = None, body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if body or method in ("POST", "PUT"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@dataclass(slots=True)
class Load:
    rate: float
    seconds: float
    latencies_ms: list[float]
    statuses: dict[int, int]
    client_late_ms: list[float]  # how late the generator itself woke up for each request

    def summary(self) -> dict[str, Any]:
        return {
            "rate": self.rate,
            "seconds": self.seconds,
            **summary_ms(self.latencies_ms),
            "statuses": self.statuses,
            "client_wakeup_late_p99_ms": round(percentile(self.client_late_ms, 99), 3),
        }


async def open_loop(port: int, request: bytes, rate: float, seconds: float, connections: int = 16) -> Load:
    """Send ``request`` at a fixed ``rate`` for ``seconds``, wrk2-style: open loop, latency from the
    *intended* send time, so a stalled server is charged for the requests it made wait (no coordinated
    omission). Request i goes on connection i mod ``connections`` at ``t0 + i / rate``.
    """
    loop = asyncio.get_running_loop()
    conns = [(await loop.create_connection(_Conn, "127.0.0.1", port))[1] for _ in range(connections)]
    n = max(1, int(rate * seconds))
    latencies = [0.0] * n
    late = [0.0] * n
    statuses: Counter[int] = Counter()
    t0 = loop.time() + 0.05

    async def drive(c: int) -> None:
        conn = conns[c]
        for i in range(c, n, connections):
            due = t0 + i / rate
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            late[i] = max(0.0, loop.time() - due) * 1000
            statuses[await conn.request(request)] += 1
            latencies[i] = (loop.time() - due) * 1000

    try:
        await asyncio.gather(*(drive(c) for c in range(min(connections, n))))
    finally:
        for conn in conns:
            if conn.transport is not None:
                conn.transport.close()
    return Load(rate, seconds, latencies, dict(statuses), late)


async def closed_loop(port: int, requests: list[bytes], rounds: int, warmup: int = 5) -> list[list[float]]:
    """Latency of each request in ``requests``, sent in turn on one connection ``rounds`` times."""
    loop = asyncio.get_running_loop()
    conn = (await loop.create_connection(_Conn, "127.0.0.1", port))[1]
    out: list[list[float]] = [[] for _ in requests]
    try:
        for r in range(warmup + rounds):
            for i, req in enumerate(requests):
                started = loop.time()
                status = await conn.request(req)
                if status != 200:
                    raise RuntimeError(f"request {i} answered {status}")
                if r >= warmup:
                    out[i].append((loop.time() - started) * 1000)
    finally:
        assert conn.transport is not None
        conn.transport.close()
    return out
