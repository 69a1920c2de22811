"""What the security tests share: the job body, the webhook secret, a loopback bait server, and a
dump of the database to search for secrets."""

from __future__ import annotations

import base64
import sqlite3

from fakes.server import FakeUpstream
from helpers.backends import database_url, rows
from helpers.gateway import GatewayProcess
from helpers.media import png_bytes
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

MODEL = "vidgate/procedural"
SMALL = {"model": MODEL, "prompt": "a quiet harbour", "duration": 1, "size": "160x90"}
SECRET = "whsec_" + base64.b64encode(b"security-webhook-secret-32-bytes").decode()
TERMINAL = {"completed", "failed", "cancelled", "expired"}


class Bait:
    """A loopback server that records every request; ``/redirect`` 302s to ``/target`` on itself."""

    def __init__(self) -> None:
        self.seen: list[str] = []

        async def any_path(request: Request) -> Response:
            self.seen.append(f"{request.method} {request.url.path}")
            if request.url.path == "/redirect":
                return RedirectResponse(str(request.base_url) + "target", status_code=302)
            if request.url.path.endswith(".png"):
                return Response(png_bytes((10, 20, 30)), media_type="image/png")
            return Response(status_code=204)

        self.server = FakeUpstream(Starlette(routes=[Route("/{path:path}", any_path, methods=["GET", "POST"])]))
        self.server.start()

    @property
    def port(self) -> int:
        return self.server.port

    def stop(self) -> None:
        self.server.stop()


def database_text(gw: GatewayProcess) -> str:
    """Every row of every table as text, from either database."""
    url = database_url(gw)
    if url.startswith("sqlite:///"):
        conn = sqlite3.connect(url.split("sqlite:///", 1)[1])
        try:
            return "\n".join(conn.iterdump())
        finally:
            conn.close()
    tables = [t for (t,) in rows(gw, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")]
    return "\n".join(str(r) for t in tables for r in rows(gw, f'SELECT CAST(t AS TEXT) FROM "{t}" t'))
