"""Hostile input is refused at create, cheaply, in the one error envelope, through real gateway processes.

Three classes: URLs that do not parse (or are plain http where only https is allowed) are a 400
naming the field, not a job that fails later in the worker or the webhook sender; free-form
objects nested hundreds of levels deep (or too large) are a quick 400 while ``/healthz`` keeps
answering, not a 500 after seconds of a stalled event loop; pictures whose header declares huge
dimensions are refused before anything decodes them (400 at create when inline, a failed job
naming the input when fetched), and the server's peak memory stays bounded.
"""

from __future__ import annotations

import asyncio
import base64
import struct
import time
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np
import orjson
import pytest
from fakes.server import FakeUpstream
from helpers.gateway import GatewayProcess, wait_status
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from vidgate.gateway.jobs.spec import Reference
from vidgate.gateway.net import BlockedURL
from vidgate.gateway.render.image import ImageDecodeError, decode_image
from vidgate.gateway.render.imagesize import ImageInfo, sniff
from vidgate.gateway.settings import Settings
from vidgate.gateway.worker.jobspec import fetch_references

MODEL = "vidgate/procedural"
SMALL = {"model": MODEL, "prompt": "input limits", "duration": 1, "size": "160x90"}
SECRET = "whsec_" + base64.b64encode(b"input-limits-webhook-secret-32by").decode()
IMAGE_PARAM = "input_references[0].image_url.url"
PEAK_RSS_LIMIT_MB = 600

BAD_URLS = [
    ("bad IPv6 literal", "https://[::1/x.png"),
    ("port not a number", "https://a.test:abc/x.png"),
    ("port out of range", "https://a.test:99999/x.png"),
    ("port zero", "https://a.test:0/x.png"),
    ("space", "https://a.test/x y.png"),
    ("newline", "https://a.test/x.png\n"),
    ("tab in the host", "https://a.test\t/x.png"),
    ("control character", "https://a.test/x\x07.png"),
    ("no host", "https:///x.png"),
    ("empty host after userinfo", "https://@/x.png"),
    ("backslash", "https://a.test\\@b.test/x.png"),
    ("bad IPv4 literal", "https://256.1.1.1/x.png"),
    ("bad IDNA host", "https://a\u200b.test/x.png"),
    ("not http(s)", "ftp://a.test/x.png"),
    ("too long", "https://a.test/" + "x" * 5000),
]


# --- helpers -------------------------------------------------------------------------------------


def envelope(r: httpx.Response, param: str, case: str = "") -> dict[str, Any]:
    assert r.status_code == 400, (case, r.text[:500])
    assert r.headers["content-type"].startswith("application/json")
    err = r.json()["error"]
    assert err["code"] == "validation_error" and err["type"] == "invalid_request_error", err
    assert err["param"] == param, (case, err)
    assert err["message"] and len(err["message"]) < 500, err
    assert err["request_id"] == r.headers["x-request-id"]
    return err


def _zeros_zlib(n: int) -> bytes:
    """``zlib.compress(bytes(n))`` in milliseconds: identical fully-flushed blocks are compressed once."""
    block = 1 << 22
    z = zlib.compressobj(9, zlib.DEFLATED, -15)
    full, rest = divmod(n, block)
    first = z.compress(bytes(block)) + z.flush(zlib.Z_FULL_FLUSH) if full else b""
    middle = z.compress(bytes(block)) + z.flush(zlib.Z_FULL_FLUSH) if full > 1 else b""
    tail = z.compress(bytes(rest)) + z.flush(zlib.Z_FINISH)
    adler = ((n % 65521) << 16) | 1  # adler32 of n zero bytes
    return b"\x78\xda" + first + middle * max(0, full - 1) + tail + struct.pack(">I", adler)


def black_png(width: int, height: int, *, grey: bool = False) -> bytes:
    """A complete, valid all-black PNG: tiny on the wire whatever ``width x height`` it declares."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    channels, colour = (1, 0) if grey else (3, 2)
    header = struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0)
    pixels = _zeros_zlib((1 + width * channels) * height)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def first_frame(url: str) -> list[dict[str, Any]]:
    return [{"type": "image_url", "role": "first_frame", "image_url": {"url": url}}]


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (the server forks its worker process)."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(parents.get(p, []))
    return out


def memory_mb(gw: GatewayProcess, field: str) -> float:
    """``VmRSS`` (now) or ``VmHWM`` (peak) summed over the server's processes, in MB."""
    assert gw.proc is not None
    total = 0
    for pid in _tree(gw.proc.pid):
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith(f"{field}:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def post_timed(gw: GatewayProcess, key: str, body: bytes) -> tuple[httpx.Response, float]:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    started = time.monotonic()
    r = httpx.post(gw.base_url + "/v1/videos", content=body, headers=headers, timeout=120)
    return r, time.monotonic() - started


def create_with_healthz(gw: GatewayProcess, key: str, body: bytes) -> tuple[httpx.Response, float, list[Any]]:
    """Send ``body`` while ``/healthz`` is asked over and over: ``(response, seconds, healthz answers)``."""
    health: list[tuple[int, float]] = []
    with ThreadPoolExecutor(1) as pool, httpx.Client(base_url=gw.base_url, timeout=120) as probe:
        pending = pool.submit(post_timed, gw, key, body)
        while True:
            started = time.monotonic()
            health.append((probe.get("/healthz").status_code, time.monotonic() - started))
            if pending.done():
                break
            time.sleep(0.02)
        r, took = pending.result()
    return r, took, health


def deep(depth: int) -> bytes:
    return orjson.dumps(SMALL)[:-1] + b',"provider_params":' + b'{"a":' * depth + b"1" + b"}" * depth + b"}"


# --- gateways ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """Private URLs not allowed: only https:// may be given."""
    gw = GatewayProcess(tmp_path_factory.mktemp("limits-strict"), env={"VIDGATE_ALLOW_PRIVATE_URLS": "0"}).start()
    yield gw
    gw.stop()


@pytest.fixture(scope="module")
def lenient(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """Private URLs allowed (as every other test runs), text logs (the default)."""
    gw = GatewayProcess(tmp_path_factory.mktemp("limits-lenient"), env={"VIDGATE_LOG_FORMAT": "text"}).start()
    yield gw
    gw.stop()


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """A gateway of its own, so its peak memory is only this module's pictures."""
    gw = GatewayProcess(tmp_path_factory.mktemp("limits-media")).start()
    yield gw
    gw.stop()


# --- 1. URLs -------------------------------------------------------------------------------------


def test_unparsable_urls_refused_at_create(strict: GatewayProcess, lenient: GatewayProcess) -> None:
    key = strict.new_key("urls")
    with strict.client(key) as api:
        for name, url in [*BAD_URLS, ("plain http", "http://a.test/x.png")]:
            r = api.post("/v1/videos", json={**SMALL, "webhook": {"url": url, "secret": SECRET}})
            envelope(r, "webhook.url", name)
            r = api.post("/v1/videos", json={**SMALL, "input_references": first_frame(url)})
            envelope(r, IMAGE_PARAM, name)
        # The OpenAI-compatible mount shares the validator.
        body = {"model": MODEL, "prompt": "x", "seconds": "1", "size": "160x90", "input_reference": {"image_url": ""}}
        for name, url in BAD_URLS[:3]:
            body["input_reference"] = {"image_url": url}
            envelope(api.post("/openai/v1/videos", json=body), IMAGE_PARAM, name)
        assert api.get("/v1/videos").json()["data"] == [], "a refused request stored a job"
        ok = api.post("/v1/videos", json={**SMALL, "webhook": {"url": "https://[::1]:8443/hook", "secret": SECRET}})
        assert ok.status_code == 202, ok.text
    # Where private URLs are allowed (tests, private deployments), plain http is fine; broken URLs are not.
    with lenient.client(lenient.new_key("urls")) as api:
        hook = {"url": "http://127.0.0.1:9/hook", "secret": SECRET}
        assert api.post("/v1/videos", json={**SMALL, "webhook": hook}).status_code == 202
        for name, url in BAD_URLS:
            r = api.post("/v1/videos", json={**SMALL, "webhook": {"url": url, "secret": SECRET}})
            envelope(r, "webhook.url", name)
    print(
        f"\nURLs: {len(BAD_URLS) + 1} malformed or plain-http URLs refused at create as webhook.url and as "
        f"{IMAGE_PARAM} (and through /openai/v1)"
    )


# --- 2. Deep or huge free-form objects ------------------------------------------------------------


def test_deep_provider_params_refused_quickly(lenient: GatewayProcess) -> None:
    key = lenient.new_key("deep")
    report = []
    for depth in (1000, 33, 300, 900, 5000, 100_000):
        r, took, health = create_with_healthz(lenient, key, deep(depth))
        envelope(r, "provider_params", f"depth {depth}")
        assert all(status == 200 for status, _ in health), health
        slowest = max(seconds for _, seconds in health)
        report.append(
            f"depth {depth}: 400 in {took * 1000:.0f} ms, /healthz x{len(health)} max {slowest * 1000:.0f} ms"
        )
    with lenient.client(key) as api:
        r = api.post("/v1/videos", content=deep(32), headers={"Content-Type": "application/json"})
        assert r.status_code == 202, r.text  # the limit itself is allowed
        too_big = {
            "provider_params.a": {"a": "x" * (300 << 10)},
            "provider_params": {"k" * 300: 1},
            "provider_params.a[1].b": None,
        }
        for param, params in too_big.items():
            if params is None:  # an integer beyond 64 bits (a 500 when the job's spec was serialised)
                body = orjson.dumps(SMALL)[:-1] + b',"provider_params":{"a":[1,{"b":123456789012345678901234567890}]}}'
                r = api.post("/v1/videos", content=body, headers={"Content-Type": "application/json"})
            else:
                r = api.post("/v1/videos", json={**SMALL, "provider_params": params})
            envelope(r, param)
        envelope(
            api.post("/v1/videos", json={**SMALL, "provider_params": {"a": list(range(10_001))}}), "provider_params"
        )
    assert lenient.proc is not None and lenient.proc.poll() is None
    print("\nDeep provider_params: " + "; ".join(report))


# --- 3. Picture bombs ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pictures() -> Iterator[tuple[FakeUpstream, dict[str, bytes]]]:
    files = {"huge.png": black_png(16000, 16000)}  # FFmpeg itself refuses much more than this

    async def serve(request: Request) -> Response:
        return Response(files[request.path_params["name"]], media_type="image/png")

    server = FakeUpstream(Starlette(routes=[Route("/{name}", serve)]))
    server.start()
    yield server, files
    server.stop()


def test_image_bombs_refused_before_decoding(media: GatewayProcess, pictures: tuple[FakeUpstream, Any]) -> None:
    server, files = pictures
    key = media.new_key("media", balance=100.0)
    before = memory_mb(media, "VmRSS")
    inline = black_png(15000, 15000)  # 0.64 MB of PNG, 675 MB of pixels
    assert sniff(inline) is not None and len(inline) < 700 << 10
    with media.client(key) as api:
        # Inline: refused at create, naming the input.
        r = api.post("/v1/videos", json={**SMALL, "input_references": first_frame(data_url(inline))})
        err = envelope(r, IMAGE_PARAM)
        assert "15000x15000" in err["message"], err
        # Fetched: the job fails before anything decodes the picture, naming the input.
        url = f"http://127.0.0.1:{server.port}/huge.png"
        r = api.post("/v1/videos", json={**SMALL, "input_references": first_frame(url)})
        assert r.status_code == 202, r.text
        done = wait_status(api, r.json()["id"], {"completed", "failed"}, timeout=120)
        assert done["status"] == "failed", done
        assert done["error"]["code"] == "input_reference_invalid", done["error"]
        assert IMAGE_PARAM in done["error"]["message"] and "16000x16000" in done["error"]["message"], done["error"]
        assert done["billing"]["state"] == "void", done["billing"]
        # A picture far from the canvas' shape (1x300 onto 1280x720 was scaled to 1280x384000 first).
        thin = {**SMALL, "size": "1280x720", "input_references": first_frame(data_url(black_png(1, 300)))}
        r = api.post("/v1/videos", json=thin)
        assert r.status_code == 202, r.text
        assert wait_status(api, r.json()["id"], {"completed", "failed"}, timeout=120)["status"] == "completed"
    peak = memory_mb(media, "VmHWM")
    print(
        f"\nPicture bombs: inline 15000x15000 PNG ({len(inline) >> 10} KiB) -> 400; fetched 16000x16000 PNG "
        f"({len(files['huge.png']) >> 10} KiB) -> job failed input_reference_invalid; 1x300 on 1280x720 completed; "
        f"server RSS {before:.0f} MB before, peak {peak:.0f} MB"
    )
    assert peak < PEAK_RSS_LIMIT_MB, f"the server's peak memory reached {peak:.0f} MB"


@pytest.mark.parametrize(
    ("codec", "pix_fmt", "fmt"),
    [("png", "rgb24", "png"), ("mjpeg", "yuvj420p", "jpeg"), ("libwebp", "yuv420p", "webp"), ("gif", "rgb8", "gif")],
)
def test_header_size_of_every_accepted_format(codec: str, pix_fmt: str, fmt: str) -> None:
    encoder = av.CodecContext.create(codec, "w")
    encoder.width, encoder.height, encoder.pix_fmt = 300, 200, pix_fmt
    frame = av.VideoFrame.from_ndarray(np.full((200, 300, 3), 90, dtype=np.uint8), format="rgb24").reformat(
        format=pix_fmt
    )
    data = b"".join(bytes(p) for p in [*encoder.encode(frame), *encoder.encode(None)])
    assert sniff(data) == ImageInfo(fmt, 300, 200)
    assert sniff(data[:5]) is None and sniff(b"not an image at all") is None
    assert decode_image(data, 64, 64).shape == (64, 64, 3)


def test_decoding_is_bounded_by_the_header_and_the_canvas() -> None:
    started = time.monotonic()
    with pytest.raises(ImageDecodeError, match="16000x16000"):
        decode_image(black_png(16000, 16000), 160, 90)
    # 1x300 onto 1280x720 used to be scaled to 1280x384000 (1.4 GB) before cropping.
    assert decode_image(black_png(1, 300), 1280, 720).shape == (720, 1280, 3)
    assert time.monotonic() - started < 30


def test_a_redirect_to_a_url_that_does_not_parse_fails_the_reference() -> None:
    """What create cannot see: the image server answers with a broken Location (in-process, no network:
    a mock transport answers the public hop). The worker fails the reference, never loops on a crash."""

    def public(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"location": "https://a.test:99999/frame.png"})

    async def go() -> None:
        refs = [Reference(role="first_frame", url="https://93.184.216.34/frame.png")]
        async with httpx.AsyncClient(transport=httpx.MockTransport(public)) as client:
            with pytest.raises(BlockedURL, match="does not parse"):
                await fetch_references(client, refs, Settings(allow_private_urls=False))

    asyncio.run(go())
