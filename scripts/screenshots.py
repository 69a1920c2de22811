#!/usr/bin/env python3
"""Screenshots of every dashboard page into docs/screenshots/, from a fresh local gateway.

    .venv/bin/python scripts/screenshots.py [--out docs/screenshots]

Starts ``vidgate serve`` in a temporary data dir (as the tests do), makes a few jobs and drives
Debian's chromium through sign-in, playground, jobs, a job page, models and usage, then, signed in
with the admin key, the API keys, ledger and request log pages.
"""

from __future__ import annotations

import argparse
import base64
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from helpers.gateway import ADMIN_KEY, GatewayProcess, wait_status  # noqa: E402
from playwright.sync_api import expect, sync_playwright  # noqa: E402
from web.browser import VIEWPORT, launch, sign_in, wait_until  # noqa: E402

MODEL = "vidgate/procedural"
PLAYING = "document.querySelector('[data-testid=player]')?.readyState >= 2"
PROMPTS = [
    ("a lighthouse at dusk, waves rolling in", "1280x720", 4),
    ("a red fox in fresh snow", "640x360", 2),
    ("neon rain over a night market", "960x540", 3),
    ("a paper boat drifting on a pond", "480x480", 2),
]


class _Hook(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def seed_jobs(gateway: GatewayProcess, key: str) -> None:
    """A few completed jobs and a cancelled one."""
    with gateway.client(key) as api:
        ids = []
        for prompt, size, seconds in PROMPTS:
            r = api.post("/v1/videos", json={"model": MODEL, "prompt": prompt, "size": size, "duration": seconds})
            r.raise_for_status()
            ids.append(r.json()["id"])
        for video_id in ids:
            wait_status(api, video_id, {"completed"})
        r = api.post(
            "/v1/videos",
            json={"model": MODEL, "prompt": "a slow pan across a city", "duration": 20, "size": "1920x1080"},
        )
        api.post(f"/v1/videos/{r.json()['id']}/cancel").raise_for_status()


def create_with_webhook(gateway: GatewayProcess, key: str, hook_url: str) -> str:
    webhook = {"url": hook_url, "secret": "whsec_" + base64.b64encode(b"screenshots-secret-32-bytes-long").decode()}
    with gateway.client(key) as api:
        r = api.post(
            "/v1/videos",
            json={
                "model": MODEL,
                "prompt": "clouds rolling over mountains",
                "duration": 6,
                "size": "1280x720",
                "generate_audio": True,
                "webhook": webhook,
            },
        )
        r.raise_for_status()
        return r.json()["id"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    expect.set_options(timeout=30_000)

    receiver = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    hook_url = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
    with tempfile.TemporaryDirectory(prefix="vidgate-shots-") as tmp:
        gateway = GatewayProcess(Path(tmp)).start()
        try:
            key = gateway.new_key("dashboard")
            with gateway.admin() as admin:  # limits for the usage page to show
                admin.patch(
                    f"/v1/admin/keys/{gateway.key_id(key)}/limits",
                    json={"daily_limit": 0.5, "monthly_limit": 10, "rate_per_second": 20, "max_concurrent_jobs": 8},
                ).raise_for_status()
            for name, balance in (("staging", 25.0), ("ci", 5.0)):
                gateway.new_key(name, balance)
            with sync_playwright() as p:
                browser = launch(p)
                page = browser.new_context(viewport=VIEWPORT, device_scale_factor=1).new_page()
                page.set_default_timeout(30_000)
                shoot(page, gateway, key, hook_url, args.out)
                browser.close()
        finally:
            gateway.stop()
            receiver.shutdown()
    for name in sorted(args.out.glob("*.png")):
        print(name.relative_to(ROOT) if name.is_relative_to(ROOT) else name)


def shoot(page: Any, gateway: GatewayProcess, key: str, hook_url: str, out: Path) -> None:
    page.goto(gateway.base_url + "/")
    page.get_by_test_id("api-key").wait_for()
    page.screenshot(path=out / "signin.png")

    sign_in(page, gateway.base_url, key)
    seed_jobs(gateway, key)

    page.get_by_test_id("prompt").fill("a lighthouse at dusk, waves rolling in")
    page.get_by_test_id("duration").select_option("4")
    page.get_by_test_id("resolution").select_option("720p")
    expect(page.get_by_test_id("estimate")).to_have_attribute("data-amount", "0.004")
    page.get_by_test_id("submit").click()
    expect(page.get_by_test_id("job-status")).to_have_text("completed")
    wait_until(page, PLAYING)
    page.evaluate("window.scrollTo(0, 0)")
    time.sleep(1.2)
    page.screenshot(path=out / "playground.png")

    # A long render in the table shows a live progress bar.
    with gateway.client(key) as api:
        running = api.post(
            "/v1/videos",
            json={"model": MODEL, "prompt": "a timelapse of a harbour at night", "duration": 20, "size": "1920x1080"},
        ).json()["id"]
    page.get_by_test_id("nav-jobs").click()
    row = page.locator(f'[data-testid="job-row"][data-id="{running}"]')
    expect(row.get_by_test_id("job-status")).to_have_text("processing")
    row.get_by_role("progressbar").evaluate("bar => bar.id = 'running-bar'")
    wait_until(page, "Number(document.getElementById('running-bar').getAttribute('aria-valuenow')) >= 15", timeout=60)
    page.screenshot(path=out / "jobs.png")
    row.get_by_test_id("cancel").click()
    expect(row.get_by_test_id("job-status")).to_have_text("cancelled")

    # Opened while it renders, so the timeline shows what the websocket reported.
    page.set_viewport_size({"width": VIEWPORT["width"], "height": 1600})
    live = create_with_webhook(gateway, key, hook_url)
    page.goto(f"{gateway.base_url}/#/jobs/{live}")
    expect(page.get_by_test_id("job-status")).to_have_text("completed")
    expect(page.get_by_test_id("webhook-row").filter(has_text="video.completed")).to_contain_text("delivered")
    wait_until(page, PLAYING)
    time.sleep(1.2)
    page.screenshot(path=out / "job.png")
    page.set_viewport_size(VIEWPORT)

    page.get_by_test_id("nav-models").click()
    page.get_by_test_id("model-card").first.wait_for()
    page.screenshot(path=out / "models.png")

    page.get_by_test_id("nav-usage").click()
    page.get_by_test_id("day-bar").first.wait_for()
    page.screenshot(path=out / "usage.png")

    # On a phone: a size the API refuses, shown at the field and next to Generate, focus moved there.
    page.set_viewport_size({"width": 390, "height": 844})
    page.get_by_test_id("nav-playground").click()
    page.get_by_test_id("frame-size").check()
    page.get_by_test_id("size").fill("63x63")
    page.get_by_test_id("submit").click()
    expect(page.get_by_test_id("form-error")).to_be_visible()
    page.get_by_test_id("size").scroll_into_view_if_needed()
    time.sleep(0.3)
    page.screenshot(path=out / "playground-phone-error.png")
    page.get_by_test_id("frame-preset").check()
    page.get_by_test_id("nav-jobs").click()
    page.get_by_test_id("job-row").first.wait_for()
    time.sleep(1)
    page.screenshot(path=out / "jobs-phone.png", full_page=True)
    page.set_viewport_size(VIEWPORT)
    shoot_admin(page, gateway, key, out)


def shoot_admin(page: Any, gateway: GatewayProcess, key: str, out: Path) -> None:
    """The admin key's pages: keys (a new key's secret and one key's editor open), ledger, request log."""
    page.get_by_test_id("sign-out").click()
    page.get_by_test_id("api-key").fill(ADMIN_KEY)
    page.get_by_test_id("sign-in").click()
    page.get_by_test_id("keys-table").wait_for()
    page.get_by_test_id("new-key-name").fill("mobile app")
    page.get_by_test_id("new-key-balance").fill("10")
    page.get_by_test_id("create-key").click()
    page.get_by_test_id("new-key-secret").wait_for()
    page.locator(f'[data-testid="key-row"][data-id="{gateway.key_id(key)}"]').get_by_test_id("manage-key").click()
    page.get_by_test_id("key-editor").wait_for()
    page.set_viewport_size({"width": VIEWPORT["width"], "height": 1500})  # the whole page, sidebar included
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=out / "admin-keys.png")
    page.set_viewport_size(VIEWPORT)

    page.get_by_test_id("nav-admin-ledger").click()
    page.get_by_test_id("ledger-row").first.wait_for()
    page.screenshot(path=out / "admin-ledger.png")

    page.get_by_test_id("nav-admin-jobs").click()
    page.get_by_test_id("log-row").first.wait_for()
    page.screenshot(path=out / "admin-log.png")


if __name__ == "__main__":
    main()
