"""The TypeScript SDK's browser build in Debian's chromium, on a page served from one loopback origin,
against a ``vidgate serve`` on another: allowed by ``VIDGATE_CORS_ORIGINS``, refused without it."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers.gateway import GatewayProcess

from web.browser import CHROMIUM, launch

sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing (apt-get install chromium)")

SDK = Path(__file__).resolve().parents[2] / "sdk" / "typescript"
DIST = SDK / "dist" / "esm"  # the package's "import" entry: what a bundler or a browser loads
SECRET = "whsec_" + "c2RrLWJyb3dzZXItdGVzdC1zZWNyZXQtMzItYnl0ZXM="
JOB = {"model": "vidgate/procedural", "duration": 1, "size": "160x90"}
PAGE = b"""<!doctype html>
<meta charset="utf-8">
<title>vidgate sdk</title>
<script type="module">
  import * as sdk from "/sdk/index.js";
  window.sdk = sdk;
</script>
"""
TYPES = {".js": "text/javascript", ".map": "application/json", ".ts": "text/plain"}

# Create with a webhook, stream with a stream token while waiting, then download with sha256 checking.
RUN_JOB = """async ({ baseUrl, apiKey, job }) => {
  const { Client } = window.sdk;
  const client = new Client({ apiKey, baseUrl });
  const created = await client.videos.create(job);
  const token = await client.videos.streamToken(created.id);
  const signal = AbortSignal.timeout(60000);
  const streamed = (async () => {
    const seen = [];
    for await (const e of client.videos.stream(created.id, { token: token.token, signal })) {
      seen.push([e.type, e.data?.status ?? null]);
    }
    return seen;
  })();
  const done = await client.videos.wait(created.id, { signal });
  const events = await streamed;
  const reader = (await client.videos.download(created.id, { verify: true })).getReader();
  const chunks = [];
  for (let r = await reader.read(); !r.done; r = await reader.read()) chunks.push(r.value);
  const bytes = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  chunks.reduce((at, c) => (bytes.set(c, at), at + c.length), 0);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  const head = await client.videos.contentResponse(created.id);
  await head.body?.cancel();
  return {
    id: created.id,
    status: done.status,
    events,
    tokenUrl: token.url,
    bytes: bytes.length,
    sha256: Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join(""),
    etag: head.headers.get("etag"),
    requestId: head.headers.get("x-request-id"),
  };
}"""

# Verify a delivery with WebCrypto: both schemes, the reference's alone, and a tampered body.
VERIFY = """async ({ body, headers, secret }) => {
  const { verifyWebhook, WebhookVerificationError } = window.sdk;
  const subtle = globalThis.crypto.subtle;
  const importKey = subtle.importKey.bind(subtle);
  let keysImported = 0;
  subtle.importKey = (...args) => (keysImported++, importKey(...args));
  const raw = new Uint8Array(body);
  const event = await verifyWebhook(raw, headers, secret);
  const referenceOnly = Object.fromEntries(Object.entries(headers).filter(([k]) => !k.startsWith("webhook-")));
  const viaReference = await verifyWebhook(raw, referenceOnly, secret);
  const tampered = new TextEncoder().encode(new TextDecoder().decode(raw).replace('"completed"', '"failed"'));
  let refused = null;
  try {
    await verifyWebhook(tampered, headers, secret);
  } catch (err) {
    refused = err instanceof WebhookVerificationError ? err.name : String(err);
  }
  return { id: event.id, type: event.type, job: event.data.id, viaReference: viaReference.id, refused, keysImported };
}"""

# The same calls from a page the gateway does not list.
REFUSED = """async ({ baseUrl, apiKey, job }) => {
  const { Client, APIConnectionError } = window.sdk;
  const client = new Client({ apiKey, baseUrl, maxRetries: 0 });
  const outcome = async (call) => {
    try {
      await call();
      return "answered";
    } catch (err) {
      return err instanceof APIConnectionError ? "APIConnectionError" : `${err.name}: ${err.message}`;
    }
  };
  return {
    create: await outcome(() => client.videos.create(job)),
    list: await outcome(() => client.videos.list({ limit: 1 })),
  };
}"""


@dataclass
class Delivery:
    headers: dict[str, str]
    body: bytes


@dataclass
class PageServer:
    """Serves the page and the SDK's ESM build on its own origin, and records webhook deliveries."""

    server: ThreadingHTTPServer
    deliveries: list[Delivery] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def delivery(self, job_id: str, kind: str, timeout: float = 30.0) -> Delivery:
        def found() -> Delivery | None:
            for d in self.deliveries:
                body = json.loads(d.body)
                if body["type"] == kind and body["data"]["id"] == job_id:
                    return d
            return None

        with self.arrived:
            if not self.arrived.wait_for(found, timeout):
                raise AssertionError(f"no {kind} delivery for {job_id} within {timeout} s")
            return found()  # type: ignore[return-value]


def serve_page() -> PageServer:
    page: PageServer

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/":
                self.answer(200, "text/html; charset=utf-8", PAGE)
                return
            file = (DIST / self.path.removeprefix("/sdk/")).resolve()
            if self.path.startswith("/sdk/") and file.is_relative_to(DIST) and file.is_file():
                self.answer(200, TYPES.get(file.suffix, "application/octet-stream"), file.read_bytes())
            else:
                self.answer(404, "text/plain", b"not found")

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self.path != "/hook":
                self.answer(404, "text/plain", b"not found")
                return
            with page.arrived:
                page.deliveries.append(Delivery({k.lower(): v for k, v in self.headers.items()}, body))
                page.arrived.notify_all()
            self.answer(204, "text/plain", b"")

        def answer(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    page = PageServer(ThreadingHTTPServer(("127.0.0.1", 0), Handler))
    threading.Thread(target=page.server.serve_forever, daemon=True).start()
    return page


def build_sdk() -> None:
    """``npm run build`` unless ``dist`` is newer than every source file."""
    entry = DIST / "index.js"
    newest = max(p.stat().st_mtime for p in (SDK / "src").glob("*.ts"))
    if entry.exists() and entry.stat().st_mtime >= newest:
        return
    if not shutil.which("npm") or not (SDK / "node_modules" / "typescript").is_dir():
        pytest.skip("the SDK is not built and cannot be: run `npm ci && npm run build` in sdk/typescript")
    subprocess.run(["npm", "run", "--silent", "build"], cwd=SDK, check=True, timeout=300)


@pytest.fixture(scope="module")
def page_server() -> Iterator[PageServer]:
    build_sdk()
    page = serve_page()
    yield page
    page.server.shutdown()
    page.server.server_close()


@pytest.fixture(scope="module")
def cors_gateway(page_server: PageServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    env = {"VIDGATE_CORS_ORIGINS": page_server.origin, "VIDGATE_WEBHOOK_BACKOFF_BASE_SECONDS": "0.2"}
    proc = GatewayProcess(tmp_path_factory.mktemp("gateway-cors"), env=env).start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        b = launch(p)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any, page_server: PageServer) -> Iterator[Any]:
    """A tab on the page's origin with the SDK imported; its console is kept in ``page.console``."""
    context = browser.new_context()
    tab = context.new_page()
    tab.set_default_timeout(60_000)
    console: list[str] = []
    tab.on("console", lambda m: console.append(m.text))
    tab.console = console
    tab.goto(page_server.origin + "/")
    tab.wait_for_function("() => window.sdk !== undefined", timeout=15_000)
    yield tab
    context.close()


def test_the_sdk_in_a_browser_on_another_origin(
    cors_gateway: GatewayProcess, page_server: PageServer, page: Any
) -> None:
    """Create, wait, stream over a websocket with a stream token, download verified, verify the webhook."""
    key = cors_gateway.new_key("browser-sdk")
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    job = {
        **JOB,
        "prompt": f"a browser tab {time.time_ns()}",
        "webhook": {"url": page_server.origin + "/hook", "secret": SECRET},
    }
    result = page.evaluate(RUN_JOB, {"baseUrl": cors_gateway.base_url, "apiKey": key, "job": job})

    assert result["status"] == "completed", result
    assert result["events"][0] == ["job.snapshot", result["events"][0][1]] and result["events"][-1][1] == "completed"
    ws_base = cors_gateway.base_url.replace("http://", "ws://")
    assert result["tokenUrl"].startswith(ws_base) and sockets and sockets[0].startswith(ws_base)
    assert "token=" in sockets[0] and key not in sockets[0]
    with cors_gateway.client(key) as api:
        video = api.get(f"/v1/videos/{result['id']}").json()
        content = api.get(f"/v1/videos/{result['id']}/content").content
    assert result["sha256"] == video["asset"]["sha256"] == hashlib.sha256(content).hexdigest()
    assert result["bytes"] == video["asset"]["bytes"] == len(content)
    assert result["etag"] and video["asset"]["sha256"] in result["etag"]  # exposed to the page by CORS
    assert result["requestId"].startswith("req_")

    delivery = page_server.delivery(result["id"], "video.completed")
    verified = page.evaluate(VERIFY, {"body": list(delivery.body), "headers": delivery.headers, "secret": SECRET})
    assert verified["id"] == verified["viaReference"] == delivery.headers["webhook-id"]
    assert verified["type"] == "video.completed" and verified["job"] == result["id"]
    assert verified["refused"] == "WebhookVerificationError" and verified["keysImported"] >= 2
    assert not [m for m in page.console if "CORS" in m], page.console


def test_without_cors_the_browser_refuses_and_the_sdk_says_so(gateway: GatewayProcess, page: Any) -> None:
    """The default gateway sends no CORS headers: the page gets the SDK's typed connection error."""
    key = gateway.new_key("browser-no-cors")
    job = {**JOB, "prompt": f"a refused tab {time.time_ns()}"}
    outcome = page.evaluate(REFUSED, {"baseUrl": gateway.base_url, "apiKey": key, "job": job})
    assert outcome == {"create": "APIConnectionError", "list": "APIConnectionError"}
    assert [m for m in page.console if "blocked by CORS policy" in m], page.console
    with gateway.client(key) as api:  # the create's preflight was refused, so no job was made
        assert api.get("/v1/videos").json()["data"] == []
    assert httpx.get(gateway.base_url + "/healthz", timeout=10).status_code == 200
