"""The web dashboard: ``/`` serves its page and ``/web/*`` its static assets (no build step)."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send

WEB_DIR = Path(__file__).resolve().parent.parent / "web"

# Everything is served from this origin; signed links (local or an S3 store's presigned URL) may
# point elsewhere, so media may load from any origin. No referrer: signed links stay out of logs.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' https: http:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'none'; object-src 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


async def index(request: Request) -> Response:
    return FileResponse(WEB_DIR / "index.html", headers={**HEADERS, "Cache-Control": "no-cache"})


class Assets(StaticFiles):
    """Static files with the dashboard's security headers; revalidated so an upgrade is seen at once."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = [(k.lower().encode(), v.encode()) for k, v in {**HEADERS, "Cache-Control": "no-cache"}.items()]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await super().__call__(scope, receive, send_with_headers)
