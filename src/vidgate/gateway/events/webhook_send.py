"""One webhook POST: the client it goes out with, what it met, and a registered endpoint's test.

Every failure is an outcome with a reason, never an exception: the deliverer records it and backs
off. The start of the receiver's answer is kept (a preview), read only while the attempt's time
allows, so a receiver that answers its status and then stalls still counts by its status.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

import msgspec

from vidgate.gateway.events.signatures import Attempt, signed_headers
from vidgate.gateway.events.webhook_endpoints import EndpointRecord, Endpoints
from vidgate.gateway.ids import new_id, now_ms
from vidgate.gateway.net import BlockedURL, check_url
from vidgate.gateway.settings import Settings
from vidgate.types import JobEvent, Video, WebhookEndpointTestResult

if TYPE_CHECKING:
    import httpx

USER_AGENT = "vidgate-webhooks/1"
PREVIEW_CHARS = 500  # of a receiver's answer, kept with the attempt
PREVIEW_BYTES = 2048
PREVIEW_SECONDS = 2.0
TEST_EVENT = "webhook.test"
# What a test event carries: shaped like every event's job, so receivers' decoders take it, and
# named so no receiver mistakes it for a real job.
_TEST_VIDEO = Video(id="vid_00000000000000000000000000", status="completed", model="vidgate/procedural", created_at=0)


class Sent(msgspec.Struct, frozen=True):
    """What one attempt met: the receiver's status, or why there was none worth counting."""

    code: int | None = None
    error: str | None = None  # None: a 2xx
    permanent: bool = False  # no retry can fix it (a blocked address, the webhook gone)
    preview: str | None = None


def sender(settings: Settings) -> httpx.AsyncClient:
    """The HTTP client webhooks go out with: user-given URLs guarded, redirects not followed."""
    # Here, not at the top: API-only processes serve the delivery routes but send nothing.
    import httpx

    from vidgate.gateway.outbound import guarded_client

    return guarded_client(
        allow_private=settings.allow_private_urls,
        timeout=httpx.Timeout(settings.webhook_timeout_seconds, connect=settings.webhook_connect_timeout_seconds),
        follow_redirects=False,
        headers={"User-Agent": USER_AGENT},
    )


async def post(
    http: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str], *, seconds: float, allow_private: bool
) -> Sent:
    """POST ``body`` to ``url`` within ``seconds``, its address checked first."""
    import httpx

    try:
        async with asyncio.timeout(seconds) as budget:
            await check_url(url, allow_private=allow_private)
            async with http.stream("POST", url, content=body, headers=headers) as response:
                code = response.status_code
                preview = await read_preview(response, budget.when())
    except BlockedURL as exc:
        return Sent(error=f"not sent: {exc}", permanent=True)
    except (TimeoutError, httpx.TimeoutException):
        return Sent(error="timed out")
    except httpx.HTTPError as exc:
        return Sent(error=f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
    if 200 <= code < 300:
        return Sent(code, preview=preview)
    error = f"HTTP {code}" + (" (redirects are not followed)" if 300 <= code < 400 else "")
    return Sent(code, error, preview=preview)


async def read_preview(response: httpx.Response, deadline: float | None) -> str | None:
    """The start of the answer's body, read within ``PREVIEW_SECONDS`` and before ``deadline``."""
    import httpx

    if response.headers.get("content-encoding", "identity").lower() not in ("", "identity"):
        return None  # not inflated: a small compressed body may expand without bound
    remaining = PREVIEW_SECONDS
    if deadline is not None:
        remaining = min(remaining, deadline - asyncio.get_running_loop().time() - 0.1)
    chunks: list[bytes] = []
    size = 0
    if remaining > 0:
        with contextlib.suppress(TimeoutError, httpx.HTTPError):
            async with asyncio.timeout(remaining):
                async for chunk in response.aiter_raw():
                    chunks.append(chunk)
                    size += len(chunk)
                    if size >= PREVIEW_BYTES:
                        break
    text = b"".join(chunks)[:PREVIEW_BYTES].decode("utf-8", "replace")[:PREVIEW_CHARS].strip()
    return text or None


async def send_test(settings: Settings, endpoints: Endpoints, endpoint: EndpointRecord) -> WebhookEndpointTestResult:
    """Send one signed ``webhook.test`` event to ``endpoint`` now, once, and say what it met."""
    now = now_ms()
    event_id = new_id("evt")
    data = msgspec.structs.replace(_TEST_VIDEO, created_at=now // 1000)
    body = msgspec.json.encode(JobEvent(id=event_id, type=TEST_EVENT, created_at=now // 1000, data=data))
    attempt = Attempt(event_id, TEST_EVENT, 1, 1, new_id("whd"))
    headers = signed_headers(body, endpoints.signing_secrets(endpoint, now), attempt)
    async with sender(settings) as http:
        sent = await post(
            http,
            endpoint.url,
            body,
            headers,
            seconds=settings.webhook_timeout_seconds,
            allow_private=settings.allow_private_urls,
        )
    return WebhookEndpointTestResult(
        ok=sent.error is None,
        event_id=event_id,
        status_code=sent.code,
        error=sent.error,
        response_body_preview=sent.preview,
    )
