"""The dashboard's admin pages (keys, ledger, request log), the 403 page, a key's own limits (its
request-rate bucket included) on the usage page, and redelivering a failed webhook from the job
page: in Debian's chromium, against a real ``vidgate serve``, checked against the API."""

from __future__ import annotations

import base64
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from helpers.gateway import ADMIN_KEY, GatewayProcess, wait_status

from web.axe import AXE, assert_clean, audit, audit_route
from web.browser import CHROMIUM, open_tab, sign_in, wait_until

sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
expect = sync_api.expect
expect.set_options(timeout=15_000)

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing (apt-get install chromium)")

MODEL = "vidgate/procedural"
SMALL = {"model": MODEL, "duration": 1, "size": "64x64"}
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def console() -> list[str]:
    """The tab's uncaught errors and console errors; a test takes out those it caused on purpose."""
    return []


@pytest.fixture
def page(browser: Any, console: list[str]) -> Iterator[Any]:
    """A fresh tab; an uncaught error or any console error (a failed request included) fails the test."""
    context, tab, _ = open_tab(browser, errors=console)
    yield tab
    context.close()
    assert console == [], console


def admin_sign_in(page: Any, base_url: str) -> None:
    page.goto(base_url + "/")
    page.get_by_test_id("api-key").fill(ADMIN_KEY)
    page.get_by_test_id("sign-in").click()
    page.get_by_test_id("keys-table").wait_for()


def hash_query(page: Any) -> dict[str, list[str]]:
    fragment = urlsplit(page.url).fragment
    return parse_qs(fragment.split("?", 1)[1]) if "?" in fragment else {}


def key_row(page: Any, key_id: str) -> Any:
    return page.locator(f'[data-testid="key-row"][data-id="{key_id}"]')


def test_the_admin_creates_tops_up_limits_and_revokes_a_key(
    gateway: GatewayProcess, page: Any, console: list[str]
) -> None:
    """Sign in with the admin key: only the admin pages are offered; a key made here works, its secret
    is shown once; top-up, limits and revoke reach the API."""
    admin_sign_in(page, gateway.base_url)
    assert page.url.endswith("#/admin/keys") and page.title() == "API keys · vidgate"
    for testid in ("nav-admin-keys", "nav-admin-ledger", "nav-admin-jobs"):
        expect(page.get_by_test_id(testid)).to_be_visible()
    for testid in ("nav-playground", "nav-jobs", "nav-usage"):
        expect(page.get_by_test_id(testid)).to_be_hidden()
    assert ADMIN_KEY not in page.get_by_test_id("key-hint").inner_text()

    page.get_by_test_id("new-key-name").fill("made in the browser")
    page.get_by_test_id("new-key-balance").fill("2")
    page.get_by_test_id("create-key").click()
    secret = page.get_by_test_id("new-key-secret")
    expect(secret).to_have_value(re.compile(r"^vg_[\w-]{20,}$"))
    key = secret.input_value()
    page.get_by_test_id("copy-key").click()
    expect(page.get_by_test_id("copy-status")).to_contain_text("Cop")
    key_id = gateway.key_id(key)
    row = key_row(page, key_id)
    expect(row).to_contain_text("made in the browser")
    expect(row.get_by_test_id("key-balance")).to_have_text("$2.0000")
    assert key not in row.inner_text()  # the list never shows a secret
    with gateway.client(key) as api:
        assert api.get("/v1/usage").json()["balance"] == 2.0
    page.get_by_test_id("secret-done").click()
    expect(page.get_by_test_id("new-key")).to_have_count(0)
    assert key not in page.content()  # gone from the page once dismissed

    row.get_by_test_id("manage-key").click()
    editor = page.locator(f'[data-testid="key-editor"][data-id="{key_id}"]')
    expect(editor).to_be_visible()
    editor.get_by_test_id("topup-amount").fill("1.5")
    editor.get_by_test_id("topup-memo").fill("a browser top-up")
    editor.get_by_test_id("topup-submit").click()
    expect(row.get_by_test_id("key-balance")).to_have_text("$3.5000")
    expect(editor.get_by_test_id("editor-balance")).to_have_text("$3.5000")
    with gateway.admin() as admin:
        entries = admin.get(f"/v1/admin/keys/{key_id}/ledger").json()["entries"]
    assert entries[0]["kind"] == "topup" and entries[0]["amount"] == 1.5 and entries[0]["memo"] == "a browser top-up"

    editor.get_by_test_id("limit-daily_limit").fill("1.25")
    editor.get_by_test_id("limit-max_concurrent_jobs").fill("2")
    editor.get_by_test_id("limit-rate_per_second").fill("40")
    editor.get_by_test_id("limits-submit").click()
    expect(row.get_by_test_id("key-limits")).to_have_text("$1.25/day · 40/s · 2 at once")
    with gateway.client(key) as api:
        limits = api.get("/v1/usage/limits").json()
    assert (limits["daily"]["limit"], limits["max_concurrent_jobs"], limits["rate_per_second"]) == (1.25, 2, 40)
    editor.get_by_test_id("limit-daily_limit").fill("")  # blank removes it
    editor.get_by_test_id("limits-submit").click()
    expect(row.get_by_test_id("key-limits")).to_have_text("40/s · 2 at once")
    with gateway.client(key) as api:
        assert api.get("/v1/usage/limits").json()["daily"]["limit"] is None

    # A refused amount is shown as the API words it.
    editor.get_by_test_id("topup-amount").fill("-100")
    editor.get_by_test_id("topup-submit").click()
    expect(page.get_by_test_id("error-message")).to_contain_text("available balance negative")
    refused = [e for e in console if "status of 400" in e]  # the browser logs the refused request itself
    assert len(refused) == 1, console
    console.remove(refused[0])

    revoke = editor.get_by_test_id("revoke-key")
    revoke.click()
    expect(revoke).to_have_text("Confirm revoke")
    with gateway.client(key) as api:
        assert api.get("/v1/usage").status_code == 200  # one click revokes nothing
    revoke.click()
    expect(row).to_have_attribute("data-revoked", "true")
    expect(editor.get_by_test_id("editor-revoked")).not_to_have_text("—")
    with gateway.client(key) as api:
        assert api.get("/v1/usage").status_code == 401  # the process that revoked it forgets it at once


def test_ledger_and_request_log_page_and_filter_in_the_url(gateway: GatewayProcess, page: Any) -> None:
    """The ledger and the request log list what the API lists, filtered by key (and kind or status),
    in pages, with the filters kept in the URL through a reload."""
    first, second = gateway.new_key("log-first", balance=1.0), gateway.new_key("log-second", balance=1.0)
    first_id, second_id = gateway.key_id(first), gateway.key_id(second)
    with gateway.admin() as admin:
        for n in range(11):
            admin.post(f"/v1/admin/keys/{first_id}/topup", json={"amount": 0.01, "memo": f"small {n}"})
    with gateway.client(first) as a, gateway.client(second) as b:
        mine = [a.post("/v1/videos", json={"prompt": f"log {n}", **SMALL}).json()["id"] for n in range(3)]
        theirs = b.post("/v1/videos", json={"prompt": "theirs", **SMALL}).json()["id"]
        done = [wait_status(a, i, {"completed"}) for i in mine]
        wait_status(b, theirs, {"completed"})
    with gateway.admin() as admin:
        ledger = admin.get("/v1/admin/ledger", params={"key_id": first_id, "limit": 500}).json()["data"]
    assert len(ledger) == 1 + 11 + 3 * 3  # opening balance, top-ups, and each job's hold, release, charge

    admin_sign_in(page, gateway.base_url)
    page.get_by_test_id("nav-admin-ledger").click()
    page.get_by_test_id("ledger-row").first.wait_for()
    assert page.title() == "Ledger · vidgate"
    page.get_by_test_id("ledger-key").select_option(first_id)
    page.get_by_test_id("page-size").select_option("10")
    expect(page.get_by_test_id("ledger-row")).to_have_count(10)
    shown = page.get_by_test_id("ledger-row").evaluate_all("rows => rows.map(r => r.dataset.id)")
    assert shown == [e["id"] for e in ledger[:10]]
    page.get_by_test_id("next-page").click()
    expect(page.get_by_test_id("page-number")).to_have_text("Page 2")
    expect(page.locator('[data-testid="ledger-row"]').first).to_have_attribute("data-id", ledger[10]["id"])
    page.get_by_test_id("next-page").click()
    expect(page.get_by_test_id("ledger-row")).to_have_count(len(ledger) - 20)
    expect(page.get_by_test_id("next-page")).to_be_disabled()
    page.get_by_test_id("prev-page").click()
    expect(page.get_by_test_id("page-number")).to_have_text("Page 2")
    page.get_by_test_id("ledger-kind").select_option("charge")
    expect(page.get_by_test_id("ledger-row")).to_have_count(3)
    expect(page.get_by_test_id("page-number")).to_have_text("Page 1")
    amounts = page.get_by_test_id("ledger-amount").all_inner_texts()
    assert amounts == [f"${-d['usage']['cost']:.4f}" for d in reversed(done)]
    assert hash_query(page) == {"key_id": [first_id], "kind": ["charge"], "limit": ["10"]}
    page.reload()
    expect(page.get_by_test_id("ledger-row")).to_have_count(3)
    expect(page.get_by_test_id("ledger-key")).to_have_value(first_id)

    page.get_by_test_id("nav-admin-jobs").click()
    page.get_by_test_id("log-row").first.wait_for()
    assert page.title() == "Request log · vidgate"
    page.get_by_test_id("log-key").select_option(first_id)
    expect(page.get_by_test_id("log-row")).to_have_count(3)
    ids = page.get_by_test_id("log-row").evaluate_all("rows => rows.map(r => r.dataset.id)")
    assert ids == list(reversed(mine))
    newest = page.locator(f'[data-testid="log-row"][data-id="{mine[-1]}"]')
    expect(newest.get_by_test_id("log-cost")).to_have_text(f"${done[-1]['usage']['cost']:.4f}")
    expect(newest).to_contain_text("vidgate")
    expect(newest.get_by_test_id("log-status-badge")).to_have_text("completed")
    page.get_by_test_id("log-key").select_option("")
    page.get_by_test_id("log-status").select_option("completed")
    page.get_by_test_id("log-model").fill(MODEL)
    expect(page.locator(f'[data-testid="log-row"][data-id="{theirs}"]')).to_have_attribute("data-key", second_id)
    wait_until(page, "new URLSearchParams(location.hash.split('?')[1]).get('model') !== null")
    assert hash_query(page) == {"status": ["completed"], "model": [MODEL]}
    page.get_by_test_id("log-provider").fill("runway")
    expect(page.get_by_test_id("log-empty")).to_be_visible()
    page.reload()
    expect(page.get_by_test_id("log-provider")).to_have_value("runway")
    expect(page.get_by_test_id("log-empty")).to_be_visible()


def test_a_key_gets_a_clear_403_on_admin_pages_and_sees_its_limits(gateway: GatewayProcess, page: Any) -> None:
    """An API key is offered no admin page and is told 403 on one; the admin key is told the same on
    a key's page. The usage page shows the key's own limits and what is used of them."""
    key = gateway.new_key("web-limits", balance=5.0)
    with gateway.admin() as admin:
        r = admin.patch(
            f"/v1/admin/keys/{gateway.key_id(key)}/limits",
            json={"daily_limit": 0.5, "monthly_limit": 3, "max_concurrent_jobs": 4},
        )
        assert r.status_code == 200, r.text
    with gateway.client(key) as api:
        cost = wait_status(api, api.post("/v1/videos", json={"prompt": "spent", **SMALL}).json()["id"], {"completed"})
    spent = cost["usage"]["cost"]
    admin_calls: list[str] = []
    page.on("request", lambda r: admin_calls.append(r.url) if "/v1/admin/" in r.url else None)
    sign_in(page, gateway.base_url, key)
    for testid in ("nav-admin-keys", "nav-admin-ledger", "nav-admin-jobs"):
        expect(page.get_by_test_id(testid)).to_be_hidden()
    for route in ("#/admin/keys", "#/admin/ledger", "#/admin/jobs?status=failed"):
        page.evaluate("h => { location.hash = h }", route)
        expect(page.get_by_test_id("forbidden")).to_contain_text("403")
        expect(page.get_by_test_id("forbidden")).to_contain_text("admin key")
        assert page.title() == "Forbidden · vidgate"
    assert admin_calls == []  # nothing was asked of the admin API with this key

    page.get_by_test_id("nav-usage").click()
    limits = page.get_by_test_id("usage-limits")
    expect(limits.get_by_test_id("limit-daily-value")).to_have_text(f"${spent:.4f} of $0.50")
    expect(limits.get_by_test_id("limit-monthly-value")).to_have_text(f"${spent:.4f} of $3.00")
    expect(limits.get_by_test_id("limit-daily")).to_contain_text(f"${0.5 - spent:.4f} left")
    expect(limits.get_by_test_id("limit-concurrency-value")).to_have_text("0 of 4")
    expect(limits.get_by_test_id("limit-rate-value")).to_have_text("No limit")
    bar = limits.get_by_test_id("limit-daily").get_by_role("progressbar")
    expect(bar).to_have_attribute("aria-valuenow", str(round(spent / 0.5 * 100)))

    page.get_by_test_id("sign-out").click()
    admin_sign_in(page, gateway.base_url)
    page.evaluate("h => { location.hash = h }", "#/playground")
    expect(page.get_by_test_id("forbidden")).to_contain_text("API key")


def test_the_usage_page_shows_what_is_left_of_the_request_burst(gateway: GatewayProcess, page: Any) -> None:
    """A rate-limited key's usage page shows the tokens left in its bucket, less than the burst once
    requests were sent, with the share used as a bar."""
    burst, sent = 80, 60  # a minute's refill at one a second
    key = gateway.new_key("web-rate")
    with gateway.admin() as admin:
        r = admin.patch(
            f"/v1/admin/keys/{gateway.key_id(key)}/limits", json={"rate_per_second": 1, "rate_burst": burst}
        )
        assert r.status_code == 200, r.text
    started = time.monotonic()
    with gateway.client(key) as api:
        for _ in range(sent):
            assert api.get("/v1/videos").status_code == 200
    sign_in(page, gateway.base_url, key)
    page.get_by_test_id("nav-usage").click()
    rate = page.get_by_test_id("usage-limits").get_by_test_id("limit-rate")
    expect(rate.get_by_test_id("limit-rate-value")).to_have_text("1 a second")
    expect(rate).to_contain_text("full again at")
    left, of = re.fullmatch(r"(\d+) of (\d+)", rate.get_by_test_id("limit-rate-available").inner_text()).groups()
    elapsed = time.monotonic() - started
    # The requests above and the page's own took tokens; at most one a second came back since.
    assert int(of) == burst and 0 <= int(left) <= burst - sent + elapsed and int(left) < burst - 1
    used = int(rate.get_by_role("progressbar").get_attribute("aria-valuenow"))
    assert 0 < used <= 100 and abs(used - round((burst - int(left)) / burst * 100)) <= 2


def test_a_failed_webhook_delivery_is_redelivered_from_the_job_page(browser: Any, tmp_path: Path) -> None:
    """A receiver answering 500 leaves the delivery failed and waiting a long backoff; Redeliver sends
    it now, and the table shows the new attempt and its answer."""
    status = {"code": 500}
    calls: list[int] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", 0)))
            calls.append(status["code"])
            self.send_response(status["code"])
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    receiver.daemon_threads = True
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    # A long backoff: the second attempt is the button's, not the schedule's (almost always; either way
    # the table must end with the receiver's latest answer).
    gw = GatewayProcess(tmp_path / "gw", env={"VIDGATE_WEBHOOK_BACKOFF_BASE_SECONDS": "600"}, log_name="hooks")
    gw.start()
    context, page, errors = open_tab(browser)
    try:
        key = gw.new_key("web-redeliver")
        hook = {
            "url": f"http://127.0.0.1:{receiver.server_address[1]}/hook",
            "secret": "whsec_" + base64.b64encode(bytes(range(32))).decode(),
            "events": ["video.completed"],
        }
        with gw.client(key) as api:
            video = api.post("/v1/videos", json={"prompt": "hooked", "webhook": hook, **SMALL}).json()
            wait_status(api, video["id"], {"completed"})
        sign_in(page, gw.base_url, key)
        page.goto(f"{gw.base_url}/#/jobs/{video['id']}")
        row = page.get_by_test_id("webhook-row")
        expect(row).to_contain_text("HTTP 500", timeout=30_000)
        attempts = int(row.get_by_test_id("webhook-attempts").inner_text())
        assert attempts >= 1 and len(calls) == attempts and set(calls) == {500}
        status["code"] = 204
        row.get_by_test_id("redeliver").click()
        expect(row.locator(".badge")).to_have_text("delivered", timeout=30_000)
        expect(row).to_contain_text("HTTP 204")
        shown = int(row.get_by_test_id("webhook-attempts").inner_text())
        assert shown == len(calls) and calls[-1] == 204 and shown > attempts
        with gw.client(key) as api:
            [delivery] = api.get(f"/v1/videos/{video['id']}/webhook_deliveries").json()["data"]
        assert delivery["status"] == "delivered" and delivery["attempts"] == shown
        assert [e["status_code"] for e in delivery["log"]][-1] == 204
        assert errors == [], errors
    finally:
        context.close()
        gw.stop()
        receiver.shutdown()
        receiver.server_close()


@pytest.mark.skipif(not AXE.exists(), reason=f"axe-core is missing at {AXE} (scripts/setup-test-env installs it)")
@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_admin_pages_pass_axe_and_fit_a_phone(gateway: GatewayProcess, browser: Any, viewport: dict[str, int]) -> None:
    """No critical or serious axe-core violation, no sideways scroll and a title of their own on the
    admin pages (with the key editor and a new secret open), the 403 page and the usage limits."""
    key = gateway.new_key("web-axe-admin", balance=1.0)
    with gateway.admin() as admin:
        admin.patch(f"/v1/admin/keys/{gateway.key_id(key)}/limits", json={"daily_limit": 1, "max_concurrent_jobs": 2})
    with gateway.client(key) as api:
        wait_status(api, api.post("/v1/videos", json={"prompt": "for the log", **SMALL}).json()["id"], {"completed"})
    context, page, errors = open_tab(browser, viewport)
    checks: dict[str, tuple[Any, int, str]] = {}
    try:
        sign_in(page, gateway.base_url, key)
        for name, route, ready in [("usage", "#/usage", "usage-limits"), ("forbidden", "#/admin/keys", "forbidden")]:
            page.evaluate("h => { location.hash = h }", route)
            page.get_by_test_id(ready).first.wait_for()
            checks[name] = audit(page)
        page.get_by_test_id("sign-out").click()
        admin_sign_in(page, gateway.base_url)
        page.get_by_test_id("new-key-name").fill("axe")
        page.get_by_test_id("create-key").click()
        page.get_by_test_id("new-key-secret").wait_for()
        page.get_by_test_id("manage-key").first.click()
        page.get_by_test_id("key-editor").wait_for()
        checks["keys"] = audit(page)
        for name, route, ready in [("ledger", "#/admin/ledger", "ledger-row"), ("log", "#/admin/jobs", "log-row")]:
            checks[name] = audit_route(page, route, ready)
        assert_clean(checks)
        assert errors == [], errors
    finally:
        context.close()
