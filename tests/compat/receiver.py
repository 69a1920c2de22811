"""A loopback webhook receiver that records every delivery's raw body and headers."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from fakes.server import FakeUpstream
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


@dataclass
class Delivery:
    """One webhook request as it arrived: signatures cover exactly ``body``."""

    name: str
    headers: dict[str, str]
    body: bytes
    status: int
    at: float


@dataclass
class Receiver:
    """``plans[name](n)`` is the status answered to the n-th try of one event sent to ``name``."""

    calls: list[Delivery] = field(default_factory=list)
    plans: dict[str, Callable[[int], int]] = field(default_factory=dict)
    tries: dict[tuple[str, str], int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: FakeUpstream | None = None

    def app(self) -> Starlette:
        async def hook(request: Request) -> Response:
            name = request.path_params["name"]
            body = await request.body()
            headers = dict(request.headers)
            event = headers.get("x-phaseo-event-id") or headers.get("webhook-id", "")
            with self.lock:
                n = self.tries[(name, event)] = self.tries.get((name, event), 0) + 1
                status = self.plans.get(name, lambda _: 200)(n)
                self.calls.append(Delivery(name, headers, body, status, time.time()))
            return Response(b"ok" if status < 300 else b"no", status_code=status)

        return Starlette(routes=[Route("/hook/{name}", hook, methods=["POST"])])

    def url(self, name: str) -> str:
        assert self.server is not None
        return f"{self.server.base_url}/hook/{name}"

    def of(self, name: str) -> list[Delivery]:
        with self.lock:
            return [c for c in self.calls if c.name == name]

    def wait(self, name: str, acknowledged: int, timeout: float = 30.0) -> list[Delivery]:
        """Every call to ``name`` once ``acknowledged`` were answered 2xx, plus a beat in which a
        delivery that should not have been made would arrive."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if sum(1 for c in self.of(name) if 200 <= c.status < 300) >= acknowledged:
                time.sleep(0.5)
                return self.of(name)
            time.sleep(0.05)
        raise AssertionError(f"{name}: wanted {acknowledged} acknowledged deliveries, got {self.of(name)}")
