"""The dashboard agrees with the API and remembers: quotes, uploads, form memory, filters in the URL,
and no critical or serious axe-core violation on any page at desktop and phone sizes."""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from helpers.gateway import GatewayProcess, wait_status

from web.axe import AXE, assert_clean, audit, audit_route
from web.browser import CHROMIUM, open_tab, sign_in, wait_until

sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
expect = sync_api.expect
expect.set_options(timeout=15_000)

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing (apt-get install chromium)")

MODEL = "vidgate/procedural"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh tab; any uncaught error or console error (a failed request included) fails the test."""
    context, tab, errors = open_tab(browser, accept_downloads=True)
    yield tab
    context.close()
    assert errors == [], errors


def noise_png(width: int, height: int) -> bytes:
    """An RGB PNG of random pixels: it does not compress, so its size is about width × height × 3."""
    raw = b"".join(b"\0" + os.urandom(width * 3) for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 1)) + chunk(b"IEND", b"")


def created(page: Any) -> list[dict[str, Any]]:
    bodies: list[dict[str, Any]] = []
    page.on(
        "request",
        lambda r: bodies.append(r.post_data_json) if r.method == "POST" and r.url.endswith("/v1/videos") else None,
    )
    return bodies


def test_the_quote_is_the_hold_of_the_created_job(gateway: GatewayProcess, page: Any) -> None:
    """1080p at 4 s is priced from the size tier, by the API, and the job is held exactly that."""
    key = gateway.new_key("web-quote")
    with gateway.client(key) as api:
        body = {"model": MODEL, "prompt": "a quote", "duration": 4, "size": "1920x1080"}
        quote = api.post("/v1/videos/quote", json=body).json()
        assert quote["amount"] == pytest.approx(0.008) and quote["object"] == "video.quote"
        assert sum(line["amount"] for line in quote["lines"]) == pytest.approx(quote["amount"])
        refused = api.post("/v1/videos/quote", json={**body, "resolution": "720p"})
        assert refused.status_code == 400 and refused.json()["error"]["param"] == "size"
        assert api.get("/v1/videos", params={"limit": 5}).json()["data"] == []  # a quote makes no job
    sign_in(page, gateway.base_url, key)
    page.get_by_test_id("prompt").fill("a quoted comet")
    page.get_by_test_id("duration").select_option("4")
    estimate = page.get_by_test_id("estimate")
    page.get_by_test_id("frame-size").check()
    page.get_by_test_id("size").fill("1920x1080")
    expect(estimate).to_have_attribute("data-amount", "0.008")
    expect(estimate).to_contain_text("$0.0080")
    expect(page.get_by_test_id("quote-lines")).to_contain_text("at resolution 1080p")
    # Resolution and aspect ratio: the quote follows them too.
    page.get_by_test_id("frame-preset").check()
    page.get_by_test_id("resolution").select_option("480p")
    expect(estimate).to_have_attribute("data-amount", "0.004")
    page.get_by_test_id("resolution").select_option("1080p")
    page.get_by_test_id("audio").check()
    expect(estimate).to_have_attribute("data-amount", "0.0088")
    shown = float(estimate.get_attribute("data-amount"))
    page.get_by_test_id("submit").click()
    video_id = page.get_by_test_id("job-link").inner_text()
    with gateway.client(key) as api:
        job = api.get(f"/v1/videos/{video_id}").json()
        assert job["billing"]["held"] == pytest.approx(shown)
        assert api.post(f"/v1/videos/{video_id}/cancel").status_code in (200, 409)
        wait_status(api, video_id, {"cancelled", "completed"})


def test_a_large_image_is_shrunk_uploaded_and_shown_with_the_job(gateway: GatewayProcess, page: Any) -> None:
    """A 2 MB PNG (over the inline JSON limit) goes up through /v1/files, made smaller, and the job page
    shows it as an input; a file of the wrong type is refused before anything is sent."""
    key = gateway.new_key("web-upload")
    big = noise_png(1000, 700)
    assert len(big) > 2_000_000
    bodies = created(page)
    uploads: list[str] = []
    page.on("request", lambda r: uploads.append(r.url) if r.method == "POST" and r.url.endswith("/v1/files") else None)
    sign_in(page, gateway.base_url, key)
    frame = page.get_by_test_id("first-frame")
    frame.set_input_files({"name": "notes.txt", "mimeType": "text/plain", "buffer": b"not an image"})
    expect(page.locator(".field:has([data-testid=first-frame]) .field-error")).to_contain_text(
        "choose a PNG, JPEG, WEBP"
    )
    assert uploads == []
    frame.set_input_files({"name": "noise.png", "mimeType": "image/png", "buffer": big})
    chosen = page.locator("[data-testid=chosen-files] li[data-file-id]")
    expect(chosen).to_have_count(1)
    file_id = chosen.get_attribute("data-file-id")
    with gateway.client(key) as api:
        stored = api.get(f"/v1/files/{file_id}").json()
    assert stored["bytes"] < 1_500_000 and stored["mime_type"] == "image/jpeg", stored
    assert (stored["width"], stored["height"]) == (1000, 700)
    page.get_by_test_id("prompt").fill("from a noisy frame")
    page.get_by_test_id("duration").select_option("1")
    page.get_by_test_id("resolution").select_option("360p")
    page.get_by_test_id("submit").click()
    expect(page.get_by_test_id("job-status")).to_have_text("completed", timeout=30_000)
    (body,) = bodies
    assert body["input_references"] == [{"type": "image", "file_id": file_id, "role": "first_frame"}]
    page.get_by_test_id("job-link").click()
    expect(page.locator(f'[data-testid=input-file][data-file-id="{file_id}"]')).to_contain_text("first frame")
    expect(page.locator("[data-testid=input-file] img")).to_have_count(1)


def test_the_form_and_recent_results_are_remembered(gateway: GatewayProcess, page: Any) -> None:
    """The form survives navigation and a reload; a finished job shows in the recent strip with its
    thumbnail; "use these settings" on a job fills the form; the code panel matches the form."""
    key = gateway.new_key("web-remember")
    sign_in(page, gateway.base_url, key)
    page.get_by_test_id("prompt").fill("a lantern in fog")
    page.get_by_test_id("duration").select_option("2")
    page.get_by_test_id("resolution").select_option("480p")
    page.get_by_test_id("seed").fill("42")
    page.get_by_test_id("nav-jobs").click()
    expect(page.get_by_test_id("jobs-empty")).to_be_visible()
    page.get_by_test_id("nav-playground").click()
    expect(page.get_by_test_id("prompt")).to_have_value("a lantern in fog")
    expect(page.get_by_test_id("duration")).to_have_value("2")
    expect(page.get_by_test_id("resolution")).to_have_value("480p")
    expect(page.get_by_test_id("seed")).to_have_value("42")
    page.reload()
    expect(page.get_by_test_id("seed")).to_have_value("42")

    page.locator(".code-card summary").click()
    page.get_by_test_id("code-python").click()
    expect(page.get_by_test_id("code-python")).to_have_attribute("aria-selected", "true")
    code = page.get_by_test_id("code")
    expect(code).to_contain_text("seed=42")
    expect(code).to_contain_text('prompt="a lantern in fog"')
    assert key not in code.inner_text()
    page.get_by_test_id("code-curl").click()
    expect(code).to_contain_text('"resolution":"480p"')

    page.get_by_test_id("submit").click()
    expect(page.get_by_test_id("job-status")).to_have_text("completed", timeout=30_000)
    video_id = page.get_by_test_id("job-link").inner_text()
    item = page.locator(f'[data-testid=recent-item][data-id="{video_id}"]')
    expect(item.locator("img.thumb-img")).to_have_count(1)
    wait_until(page, "document.querySelector('img.thumb-img')?.naturalWidth > 0")

    # Change the form, then take the job's own settings back from its page.
    page.get_by_test_id("seed").fill("7")
    page.get_by_test_id("resolution").select_option("720p")
    page.goto(f"{gateway.base_url}/#/jobs/{video_id}")
    page.get_by_test_id("use-settings").click()
    expect(page.get_by_test_id("seed")).to_have_value("42")
    expect(page.get_by_test_id("resolution")).to_have_value("480p")
    expect(page.get_by_test_id("prompt")).to_have_value("a lantern in fog")


def test_job_filters_live_in_the_url(gateway: GatewayProcess, page: Any) -> None:
    """Search by prompt and the model filter are done by the API, kept in the URL (a reload keeps
    them), rows have thumbnails, and a job made elsewhere appears without a reload."""
    key = gateway.new_key("web-filters")
    small = {"model": MODEL, "duration": 1, "size": "64x64"}
    with gateway.client(key) as api:
        ids = [api.post("/v1/videos", json={"prompt": p, **small}).json()["id"] for p in ("a Red kite", "a blue whale")]
        for video_id in ids:
            wait_status(api, video_id, {"completed"})
        found = api.get("/v1/videos", params={"q": "red", "model": MODEL}).json()
        assert [v["id"] for v in found["data"]] == ids[:1]
        assert api.get("/v1/videos", params={"model": "minimax/hailuo-2.3"}).json()["data"] == []
    sign_in(page, gateway.base_url, key)
    page.get_by_test_id("nav-jobs").click()
    expect(page.get_by_test_id("job-row")).to_have_count(2)
    expect(page.locator("[data-testid=job-row] img.thumb-img")).to_have_count(2)
    page.get_by_test_id("search").fill("RED")
    expect(page.get_by_test_id("job-row")).to_have_count(1)
    page.get_by_test_id("model-filter").select_option(MODEL)
    expect(page.get_by_test_id("job-row")).to_have_count(1)
    query = parse_qs(urlsplit(page.url).fragment.split("?", 1)[1])
    assert query == {"q": ["RED"], "model": [MODEL]}, page.url
    page.reload()
    expect(page.get_by_test_id("search")).to_have_value("RED")
    expect(page.get_by_test_id("job-row")).to_have_count(1)
    page.get_by_test_id("search").fill("")
    expect(page.get_by_test_id("job-row")).to_have_count(2)
    with gateway.client(key) as api:
        newer = api.post("/v1/videos", json={"prompt": "made elsewhere", **small}).json()["id"]
    expect(page.locator(f'[data-testid=job-row][data-id="{newer}"]')).to_be_visible(timeout=20_000)
    assert page.get_by_test_id("job-row").first.get_attribute("data-id") == newer
    with gateway.client(key) as api:
        wait_status(api, newer, {"completed"})


@pytest.mark.skipif(not AXE.exists(), reason=f"axe-core is missing at {AXE} (scripts/setup-test-env installs it)")
@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_every_page_passes_axe_and_fits_a_phone(
    gateway: GatewayProcess, browser: Any, viewport: dict[str, int]
) -> None:
    """No critical or serious axe-core violation on any page, no sideways scroll, a title per page,
    a skip link, and focus on the page's heading after navigation."""
    key = gateway.new_key("web-axe")
    with gateway.client(key) as api:
        job = api.post(
            "/v1/videos", json={"model": MODEL, "prompt": "an accessible job", "duration": 2, "size": "640x360"}
        )
        video_id = job.json()["id"]
        wait_status(api, video_id, {"completed"})
    context, page, errors = open_tab(browser, viewport, accept_downloads=True)
    try:
        page.goto(gateway.base_url + "/")
        page.get_by_test_id("signin-form").wait_for()
        checks = {"signin": audit(page)}
        sign_in(page, gateway.base_url, key)
        for name, route, ready in [
            ("playground", "#/playground", "estimate"),
            ("jobs", "#/jobs", "job-row"),
            ("job", f"#/jobs/{video_id}", "player"),
            ("models", "#/models", "model-card"),
            ("usage", "#/usage", "usage-balance"),
        ]:
            checks[name] = audit_route(page, route, ready)
        titles = assert_clean(checks)
        assert titles["jobs"] == "Jobs · vidgate" and titles["job"] == f"{video_id} · Job · vidgate", titles
        page.reload()  # a fresh load: the first Tab reaches the skip link
        page.get_by_test_id("usage-balance").wait_for()
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.dataset.testid") == "skip-link"
        assert errors == [], errors
    finally:
        context.close()


def test_a_network_failure_says_so(gateway: GatewayProcess, browser: Any) -> None:
    """A create that never reaches the gateway is reported as a network error, next to Generate."""
    key = gateway.new_key("web-offline")
    context, page, errors = open_tab(browser, PHONE, accept_downloads=True)
    try:
        sign_in(page, gateway.base_url, key)
        page.get_by_test_id("prompt").fill("offline")
        page.route("**/v1/videos", lambda route: route.abort("internetdisconnected"))
        page.get_by_test_id("submit").click()
        expect(page.get_by_test_id("form-error")).to_contain_text("Network error")
        expect(page.get_by_test_id("form-error")).to_be_in_viewport()
        assert page.evaluate("document.activeElement.dataset.testid") == "form-error"
        # The browser logs the aborted request itself; nothing else went wrong.
        assert [e for e in errors if "ERR_INTERNET_DISCONNECTED" not in e] == [], errors
    finally:
        context.close()
    with httpx.Client(base_url=gateway.base_url, headers={"Authorization": f"Bearer {key}"}) as api:
        assert api.get("/v1/videos").json()["data"] == []


def test_a_job_made_by_the_api_shows_its_inputs_and_settings(gateway: GatewayProcess, page: Any) -> None:
    """A job this browser never made shows the prompt, settings and inputs the API stored, and "use
    these settings" fills the form from them, the upload included."""
    key = gateway.new_key("web-api-inputs")
    with gateway.client(key) as api:
        up = api.post("/v1/files", files={"file": ("f.png", noise_png(64, 36), "image/png")})
        assert up.status_code in (200, 201), up.text
        file_id = up.json()["id"]
        r = api.post(
            "/v1/videos",
            json={
                "model": MODEL,
                "prompt": "a kite over dunes",
                "duration": 2,
                "resolution": "480p",
                "aspect_ratio": "16:9",
                "seed": 314,
                "input_references": [{"type": "image", "role": "first_frame", "file_id": file_id}],
            },
        )
        assert r.status_code == 202, r.text
        video_id = r.json()["id"]
        wait_status(api, video_id, {"completed", "failed"})
    sign_in(page, gateway.base_url, key)
    page.goto(f"{gateway.base_url}/#/jobs/{video_id}")
    expect(page.get_by_test_id("input-prompt")).to_have_text("a kite over dunes")
    expect(page.get_by_test_id("input-params")).to_contain_text("314")
    expect(page.get_by_test_id("input-params")).to_contain_text("480p")
    expect(page.locator(f'[data-testid=input-file][data-file-id="{file_id}"]')).to_contain_text("first frame")
    expect(page.get_by_test_id("inputs-unknown")).to_have_count(0)
    page.get_by_test_id("use-settings").click()
    expect(page.get_by_test_id("prompt")).to_have_value("a kite over dunes")
    expect(page.get_by_test_id("seed")).to_have_value("314")
    expect(page.get_by_test_id("resolution")).to_have_value("480p")
    expect(page.locator(f'[data-testid=chosen-files] [data-file-id="{file_id}"]')).to_have_count(1)


def test_an_input_output_links_to_the_job_that_made_it(gateway: GatewayProcess, page: Any) -> None:
    """An input named by an earlier output's asset id shows that id and links to the job that made it."""
    key = gateway.new_key("web-asset-inputs")
    with gateway.client(key) as api:
        first = api.post("/v1/videos", json={"model": MODEL, "prompt": "a dune", "duration": 1, "size": "128x72"})
        assert first.status_code == 202, first.text
        maker = first.json()["id"]
        done = wait_status(api, maker, {"completed", "failed"})
        assert done["status"] == "completed", done
        asset = done["outputs"][0]["asset"]["id"]
        r = api.post(
            "/v1/videos",
            json={
                "model": MODEL,
                "prompt": "the dune, longer",
                "duration": 1,
                "size": "128x72",
                "operation": "extend",
                "input_references": [{"type": "video", "role": "source", "asset_id": asset}],
            },
        )
        assert r.status_code == 202, r.text
        video_id = r.json()["id"]
        wait_status(api, video_id, {"completed", "failed"})
    sign_in(page, gateway.base_url, key)
    page.goto(f"{gateway.base_url}/#/jobs/{video_id}")
    item = page.locator(f'[data-testid=input-file][data-file-id="{asset}"]')
    expect(item).to_contain_text(asset)
    link = item.get_by_test_id("input-job")
    expect(link).to_have_text(maker)
    expect(link).to_have_attribute("href", f"#/jobs/{maker}")
    link.click()
    expect(page.get_by_test_id("job-id")).to_have_text(maker)
    expect(page.get_by_test_id("input-prompt")).to_have_text("a dune")
