"""The web dashboard at ``/``, driven in Debian's chromium against a real ``vidgate serve``."""

from __future__ import annotations

import base64
import hashlib
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers.gateway import GatewayProcess, wait_status
from helpers.media import png_bytes

from vidgate.gateway.api import dashboard
from web.browser import CHROMIUM, VIEWPORT, launch, sign_in, wait_until

sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
expect = sync_api.expect
expect.set_options(timeout=15_000)  # a loaded CI machine; a passing check returns at once

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing (apt-get install chromium)")

MODEL = "vidgate/procedural"
SMALL = {"model": MODEL, "duration": 1, "size": "64x64"}
LONG = {"model": MODEL, "duration": 20, "size": "1920x1080"}
# The playground's fields for a model, built in the page by form.js from the live listing.
FIELDS_OF = """async (id) => {
  const { paramFields } = await import("/web/form.js");
  const key = sessionStorage.getItem("vidgate.apiKey");
  const { data } = await (await fetch("/v1/videos/models", { headers: { Authorization: `Bearer ${key}` } })).json();
  const box = document.createElement("div");
  box.append(...paramFields(data.find((m) => m.id === id), null, () => {}).elements);
  const values = (sel) => [...box.querySelectorAll(sel)].map((o) => o.value);
  return {
    testids: [...box.querySelectorAll("[data-testid]")].map((e) => e.dataset.testid),
    durations: values("[data-testid=duration] option"),
    sizes: values("[data-testid=size] option"),
    hidden: [...box.querySelectorAll(".field[hidden] [data-param]")].map((e) => e.dataset.testid),
  };
}"""
PLAYER_READY = "document.querySelector('[data-testid=player]')?.readyState >= 1"  # HAVE_METADATA: duration known


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        b = launch(p)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh tab (its own sessionStorage); an uncaught script error or a CSP violation fails the test."""
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    tab = context.new_page()
    tab.set_default_timeout(15_000)
    crashes: list[str] = []
    tab.on("pageerror", lambda exc: crashes.append(str(exc)))
    tab.on("console", lambda m: crashes.append(m.text) if "Content Security Policy" in m.text else None)
    yield tab
    context.close()
    assert crashes == [], crashes


def create(api: httpx.Client, prompt: str, **fields: Any) -> dict[str, Any]:
    r = api.post("/v1/videos", json={"prompt": prompt, **fields})
    assert r.status_code == 202, r.text
    return r.json()


def row(page: Any, video_id: str) -> Any:
    return page.locator(f'[data-testid="job-row"][data-id="{video_id}"]')


def shown_ids(page: Any) -> list[str]:
    return page.get_by_test_id("job-row").evaluate_all("rows => rows.map(r => r.dataset.id)")


def test_sign_in_generate_and_play(gateway: GatewayProcess, page: Any) -> None:
    """Sign in, pick 1 s at 360p, watch the job over the websocket, play it, download the same bytes."""
    key = gateway.new_key("web-play")
    frames: list[str] = []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda payload: frames.append(f"{ws.url} {payload}")))
    sign_in(page, gateway.base_url, key)
    assert page.evaluate("sessionStorage.getItem('vidgate.apiKey')") == key
    # The form is remembered in localStorage, the key never is (nor in the URL).
    assert not page.evaluate(
        "k => Object.keys(localStorage).concat(Object.values(localStorage)).some(v => v.includes(k))", key
    )
    assert key not in page.url

    form = page.get_by_test_id("playground-form")
    expect(page.get_by_test_id("model-select")).to_have_value(MODEL)
    for testid in ("duration", "resolution", "aspect-ratio", "seed", "audio", "first-frame"):
        expect(form.get_by_test_id(testid)).to_be_visible()  # what vidgate/procedural supports
    # A model with no configured provider is listed but cannot be picked.
    hailuo = page.locator('[data-testid="model-select"] option[value="minimax/hailuo-2.3"]')
    expect(hailuo).to_be_disabled()
    expect(hailuo.locator("xpath=..")).to_have_attribute("label", re.compile("unavailable"))
    # Its fields, built by the page's own code from the listing, are its own: fixed sizes, no seed,
    # no negative prompt, and a size list shown only once "Exact size" is picked.
    built = page.evaluate(FIELDS_OF, "minimax/hailuo-2.3")
    assert "seed" not in built["testids"] and "negative-prompt" not in built["testids"], built
    assert built["durations"] == ["6", "10"] and built["sizes"] == ["1366x768", "1920x1080"], built
    assert built["hidden"] == ["size"], built
    form.get_by_test_id("frame-size").check()
    expect(form.get_by_test_id("resolution")).to_be_hidden()
    expect(form.get_by_test_id("size")).to_be_visible()
    form.get_by_test_id("frame-preset").check()
    expect(form.get_by_test_id("size")).to_be_hidden()

    page.get_by_test_id("prompt").fill("a paper boat on a pond")
    page.get_by_test_id("duration").select_option("1")
    page.get_by_test_id("resolution").select_option("360p")
    page.get_by_test_id("submit").click()

    link = page.get_by_test_id("job-link")
    video_id = link.inner_text()
    assert re.fullmatch(r"vid_[0-9a-z]{26}", video_id)
    expect(page.get_by_test_id("job-status")).to_have_text("completed", timeout=30_000)
    expect(page.get_by_test_id("job-progress")).to_have_attribute("aria-valuenow", "100")
    wait_until(page, PLAYER_READY)
    duration = page.get_by_test_id("player").evaluate("v => v.duration")
    assert abs(duration - 1.0) < 0.1, duration
    src = page.get_by_test_id("player").get_attribute("src")
    assert "disposition=inline" in src and "signature=" in src and key not in src

    # The status came over the websocket, authenticated by subprotocol, not by the key in a URL.
    assert any(f"/v1/async/video/{video_id}/ws" in f and '"job.snapshot"' in f for f in frames), frames[:3]
    assert all(key not in f.split(" ", 1)[0] for f in frames)

    with gateway.client(key) as api:
        video = api.get(f"/v1/videos/{video_id}").json()
    asset = video["asset"]
    assert (asset["width"], asset["height"], asset["duration_seconds"]) == (640, 360, 1.0)
    expect(page.get_by_test_id("asset-size")).to_have_text("640 × 360")
    expect(page.get_by_test_id("asset-sha256")).to_have_text(asset["sha256"])
    expect(page.get_by_test_id("asset-bytes")).to_contain_text(f"{asset['bytes']:,} bytes")
    with page.expect_download() as download:
        page.get_by_test_id("download").click()
    data = Path(download.value.path()).read_bytes()
    assert hashlib.sha256(data).hexdigest() == asset["sha256"] and len(data) == asset["bytes"]

    page.get_by_test_id("sign-out").click()
    expect(page.get_by_test_id("signin-form")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('vidgate.apiKey')") is None


def test_first_frame_upload_and_polling_when_the_websocket_fails(gateway: GatewayProcess, page: Any) -> None:
    """The first frame goes up through ``POST /v1/files`` and is sent by file id; with websockets refused
    the page follows the job by polling."""
    key = gateway.new_key("web-poll")
    page.route_web_socket(re.compile(r".*/ws$"), lambda ws: ws.close(code=1011))
    sent: list[dict[str, Any]] = []
    polls: list[str] = []

    def seen(request: Any) -> None:
        if request.method == "POST" and request.url.endswith("/v1/videos"):
            sent.append(request.post_data_json)
        elif request.method == "GET" and re.search(r"/v1/videos/vid_\w+$", request.url):
            polls.append(request.url)

    page.on("request", seen)
    sign_in(page, gateway.base_url, key)
    page.get_by_test_id("prompt").fill("a red square")
    page.get_by_test_id("duration").select_option("1")
    page.get_by_test_id("frame-size").check()
    page.get_by_test_id("size").fill("64x64")
    png = png_bytes((220, 30, 30))
    page.get_by_test_id("first-frame").set_input_files({"name": "red.png", "mimeType": "image/png", "buffer": png})
    expect(page.locator("[data-testid=chosen-files] li[data-file-id]")).to_have_count(1)
    page.get_by_test_id("submit").click()
    expect(page.get_by_test_id("job-status")).to_have_text("completed", timeout=30_000)
    wait_until(page, PLAYER_READY)

    (body,) = sent
    (ref,) = body["input_references"]
    assert ref["type"] == "image" and ref["role"] == "first_frame"
    with gateway.client(key) as api:
        stored = api.get(f"/v1/files/{ref['file_id']}").json()
    assert stored["sha256"] == hashlib.sha256(png).hexdigest()  # a small image goes up as it is
    assert body["size"] == "64x64" and body["duration"] == 1 and "resolution" not in body
    assert polls, "no GET /v1/videos/{id} after the websocket was refused"


def test_jobs_table_filters_and_pages(gateway: GatewayProcess, page: Any) -> None:
    """Status filter, Next/Previous keyset pages (Previous shows the first page again), delete."""
    key = gateway.new_key("web-jobs")
    with gateway.client(key) as api:
        done = [create(api, f"tile {n}", seed=n, **SMALL)["id"] for n in range(6)]
        for video_id in done:
            wait_status(api, video_id, {"completed"})
        cancelled = create(api, "a long one", **LONG)["id"]
        assert api.post(f"/v1/videos/{cancelled}/cancel").status_code == 200
        newest_first = [v["id"] for v in api.get("/v1/videos", params={"limit": 100}).json()["data"]]
    assert newest_first == [cancelled, *reversed(done)]

    sign_in(page, gateway.base_url, key)
    page.get_by_test_id("nav-jobs").click()
    expect(page.get_by_test_id("job-row")).to_have_count(7)
    assert shown_ids(page) == newest_first

    page.get_by_test_id("status-filter").select_option("cancelled")
    expect(page.get_by_test_id("job-row")).to_have_count(1)
    expect(row(page, cancelled).get_by_test_id("job-status")).to_have_text("cancelled")

    page.get_by_test_id("status-filter").select_option("completed")
    page.get_by_test_id("page-size").select_option("5")
    expect(page.get_by_test_id("job-row")).to_have_count(5)
    first_page = shown_ids(page)
    assert first_page == newest_first[1:6]
    expect(page.get_by_test_id("prev-page")).to_be_disabled()
    page.get_by_test_id("next-page").click()
    expect(page.get_by_test_id("page-number")).to_have_text("Page 2")
    expect(page.get_by_test_id("job-row")).to_have_count(1)
    assert shown_ids(page) == newest_first[6:]
    expect(page.get_by_test_id("next-page")).to_be_disabled()
    page.get_by_test_id("prev-page").click()
    expect(page.get_by_test_id("page-number")).to_have_text("Page 1")
    expect(page.get_by_test_id("job-row")).to_have_count(5)
    assert shown_ids(page) == first_page

    # Delete asks for a second click, then the row goes and so does the job.
    victim = first_page[0]
    row(page, victim).get_by_test_id("delete").click()
    expect(row(page, victim).get_by_test_id("delete")).to_have_text("Confirm delete")
    row(page, victim).get_by_test_id("delete").click()
    expect(row(page, victim)).to_have_count(0)
    with gateway.client(key) as api:
        assert api.get(f"/v1/videos/{victim}").status_code == 404


def test_cancel_from_the_table_and_live_updates(gateway: GatewayProcess, page: Any) -> None:
    """A running render cancelled from the table, and one cancelled elsewhere, turn cancelled without a reload."""
    key = gateway.new_key("web-cancel")
    with gateway.client(key) as api:
        mine = create(api, "a slow pan across a city", **LONG)["id"]
        other = create(api, "another slow pan", **LONG)["id"]
        sign_in(page, gateway.base_url, key)
        page.get_by_test_id("nav-jobs").click()
        page.evaluate("window.__sameDocument = true")
        expect(row(page, mine).get_by_test_id("job-status")).to_have_text("processing", timeout=20_000)

        row(page, mine).get_by_test_id("cancel").click()
        expect(row(page, mine).get_by_test_id("job-status")).to_have_text("cancelled")
        expect(row(page, mine).get_by_test_id("delete")).to_be_visible()
        assert wait_status(api, mine, {"cancelled"})["billing"]["state"] == "void"

        # Cancelled through the API: only the row's websocket can tell the page.
        assert api.post(f"/v1/videos/{other}/cancel").status_code == 200
        expect(row(page, other).get_by_test_id("job-status")).to_have_text("cancelled")
    assert page.evaluate("window.__sameDocument") is True


def test_api_errors_are_shown_as_the_api_words_them(gateway: GatewayProcess, page: Any) -> None:
    """A rejected key, a 400 from the playground and a 404 job page all put the API's message in the banner."""
    key = gateway.new_key("web-errors")
    with httpx.Client(base_url=gateway.base_url) as anon:
        unauthorized = anon.get("/v1/usage", headers={"Authorization": "Bearer vg_not-a-real-key"}).json()["error"]
    page.goto(gateway.base_url + "/")
    page.get_by_test_id("api-key").fill("vg_not-a-real-key")
    page.get_by_test_id("sign-in").click()
    banner = page.get_by_test_id("error-banner")
    expect(banner).to_be_visible()
    expect(page.get_by_test_id("error-message")).to_have_text(unauthorized["message"])
    expect(banner).to_contain_text("401")
    assert page.evaluate("sessionStorage.length") == 0

    sign_in(page, gateway.base_url, key)
    expect(banner).to_be_hidden()
    body = {"model": MODEL, "prompt": "odd sizes", "duration": 1, "size": "63x63"}
    with gateway.client(key) as api:
        r = api.post("/v1/videos", json=body)
    assert r.status_code == 400
    rejected = r.json()["error"]
    page.get_by_test_id("prompt").fill(body["prompt"])
    page.get_by_test_id("duration").select_option("1")
    page.get_by_test_id("frame-size").check()
    page.get_by_test_id("size").fill(body["size"])
    # The quote refuses it before anything is sent, at the field.
    expect(page.get_by_test_id("estimate")).to_contain_text(rejected["message"])
    page.get_by_test_id("submit").click()
    # Next to Generate and at the field, with focus moved there; not only in a banner at the top.
    expect(page.get_by_test_id("form-error-message")).to_have_text(rejected["message"])
    expect(page.get_by_test_id("form-error")).to_contain_text(f"param: {rejected['param']}")
    expect(page.get_by_test_id("size-error")).to_have_text(rejected["message"])
    expect(page.get_by_test_id("size")).to_have_attribute("aria-invalid", "true")
    assert page.evaluate("document.activeElement.dataset.testid") == "size"

    page.goto(gateway.base_url + "/#/jobs/vid_00000000000000000000000000")
    expect(page.get_by_test_id("page-failed")).to_be_visible()
    expect(page.get_by_test_id("error-message")).to_contain_text("vid_00000000000000000000000000")
    expect(banner).to_contain_text("404")


def test_job_page_timeline_attempts_webhooks_billing(gateway: GatewayProcess, page: Any) -> None:
    """The job page shows the lifecycle it sees live, the provider attempt, webhook deliveries and billing."""
    received = threading.Event()

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", 0)))
            self.send_response(204)
            self.end_headers()
            received.set()

        def log_message(self, *args: Any) -> None:
            pass

    key = gateway.new_key("web-job")
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    receiver.daemon_threads = True
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    hook_url = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
    try:
        sign_in(page, gateway.base_url, key)
        with gateway.client(key) as api:
            webhook = {"url": hook_url, "secret": "whsec_" + base64.b64encode(bytes(32)).decode()}
            video = create(api, "a comet over hills", model=MODEL, duration=4, size="1280x720", webhook=webhook)
            page.goto(f"{gateway.base_url}/#/jobs/{video['id']}")
            expect(page.get_by_test_id("job-id")).to_have_text(video["id"])
            expect(page.get_by_test_id("job-status")).to_have_text("completed", timeout=30_000)
            final = api.get(f"/v1/videos/{video['id']}").json()
        timeline = page.get_by_test_id("timeline")
        # Created from the job itself; the snapshot and updates as the websocket delivered them.
        labels = timeline.get_by_test_id("timeline-item").evaluate_all("items => items.map(i => i.dataset.label)")
        assert labels[0] == "Created" and labels[-1] == "Completed", labels
        assert "Snapshot" in labels and ("Started" in labels or "Status changed" in labels), labels
        expect(timeline).to_contain_text("job.snapshot")
        expect(timeline).to_contain_text("video.completed")
        attempts = page.get_by_test_id("attempt-row")
        expect(attempts).to_have_count(len(final["attempts"]))
        expect(attempts.first).to_contain_text("vidgate")
        expect(attempts.first).to_contain_text("accepted")
        assert received.wait(10)
        expect(page.get_by_test_id("webhook-url")).to_contain_text(hook_url)
        expect(page.get_by_test_id("webhook-row").filter(has_text="video.completed")).to_contain_text("delivered")
        billing = page.get_by_test_id("billing")
        expect(billing).to_contain_text("settled")
        expect(page.get_by_test_id("usage-cost")).to_have_text(f"${final['usage']['cost']:.4f}")
        wait_until(page, PLAYER_READY)
        assert abs(page.get_by_test_id("player").evaluate("v => v.duration") - 4.0) < 0.1
    finally:
        receiver.shutdown()
        receiver.server_close()


def test_models_and_usage_pages(gateway: GatewayProcess, page: Any) -> None:
    """The catalogue renders every model with providers and prices; usage draws today's bar after a job."""
    key = gateway.new_key("web-usage")
    with gateway.client(key) as api:
        wait_status(api, create(api, "a bar for the chart", **SMALL)["id"], {"completed"})
        catalogue = api.get("/v1/videos/models").json()["data"]
        usage = api.get("/v1/usage").json()
    sign_in(page, gateway.base_url, key)

    page.get_by_test_id("nav-models").click()
    expect(page.get_by_test_id("model-card")).to_have_count(len(catalogue))
    card = page.locator(f'[data-testid="model-card"][data-model="{MODEL}"]')
    expect(card).to_contain_text("available")
    expect(card.locator('[data-provider="vidgate"]')).to_contain_text("configured")
    expect(card.locator('[data-provider="vidgate"]')).to_contain_text("healthy")
    expect(card.get_by_test_id("prices")).to_contain_text("$0.0010 per second")
    page.get_by_test_id("only-available").check()
    expect(page.get_by_test_id("model-card")).to_have_count(
        sum(any(p["available"] for p in m["providers"]) for m in catalogue)
    )

    page.get_by_test_id("nav-usage").click()
    today = datetime.now(UTC).date().isoformat()
    bar = page.locator(f'[data-testid="day-bar"][data-date="{today}"]')
    expect(bar).to_have_count(1)
    day = next(d for d in usage["by_day"] if d["date"] == today)
    assert float(bar.get_attribute("data-cost")) == pytest.approx(day["cost"])
    assert float(bar.get_attribute("height")) > 1
    expect(page.get_by_test_id("usage-balance")).to_have_text(f"${usage['balance']:.4f}")
    expect(page.get_by_test_id("usage-available")).to_have_text(f"${usage['available']:.4f}")
    expect(page.locator(f'[data-testid="usage-model-row"][data-model="{MODEL}"]')).to_contain_text("1")


def test_dashboard_is_served_with_its_assets(gateway: GatewayProcess) -> None:
    """``/`` and every file under ``/web/`` are served from the gateway itself, nothing from another origin."""
    web = Path(dashboard.__file__).parent.parent / "web"
    external = re.compile(r"https?://(?!www\.w3\.org/2000/svg)")
    with httpx.Client(base_url=gateway.base_url) as c:
        index = c.get("/")
        assert index.status_code == 200 and index.headers["content-type"].startswith("text/html")
        assert "default-src 'self'" in index.headers["content-security-policy"]
        assert index.headers["referrer-policy"] == "no-referrer"
        assert external.search(index.text) is None
        names = sorted(f.name for f in web.iterdir() if f.suffix in (".js", ".css"))
        assert {"app.js", "app.css"} <= set(names)
        for name in names:
            r = c.get(f"/web/{name}")
            assert r.status_code == 200 and r.content == (web / name).read_bytes(), name
            assert external.search(r.text) is None, name
        missing = c.get("/web/nope.js")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
