"""Security properties through real gateway processes.

On the shared gateway (both backends): owner isolation on every route, keys stored only hashed and
never logged, revocation effective on the very next request, signed links refused when tampered
with, expired or used on another job, and the abuse limits (body size, request rate, concurrent
jobs). On dedicated gateways: provider credentials never reach a response or a log, and with
``VIDGATE_ALLOW_PRIVATE_URLS=0`` no webhook or input reference reaches a private, loopback or
link-local address, not even through a redirect; under strace, not one connect() is attempted;
and the per-key cap on open streams. Nothing here sends traffic anywhere but loopback.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pytest
from fakes.openai_fake import OpenAIFake
from fakes.runway_fake import RunwayFake
from fakes.server import FakeUpstream
from helpers.backends import database_url, rows
from helpers.gateway import ADMIN_KEY, GatewayProcess, wait_status
from helpers.ledger import check_ledger
from helpers.media import png_bytes
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from vidgate.gateway.jobs.signing import sign_path
from vidgate.gateway.net import BlockedURL, fetch_image

pytestmark = pytest.mark.both_backends

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


@pytest.fixture(scope="module")
def bait() -> Iterator[Bait]:
    b = Bait()
    yield b
    b.stop()


# ---- on the shared gateway, both backends ------------------------------------------------------


class Owners:
    def __init__(self, gateway: GatewayProcess, hook_url: str) -> None:
        self.a, self.b = gateway.new_key("owner-a", balance=50.0), gateway.new_key("owner-b", balance=50.0)
        with gateway.client(self.a) as api:
            r = api.post("/v1/videos", json={**SMALL, "webhook": {"url": hook_url, "secret": SECRET}})
            assert r.status_code == 202, r.text
            self.job = wait_status(api, r.json()["id"], {"completed"})["id"]
            deadline = time.monotonic() + 20
            deliveries: list[dict[str, Any]] = []
            while not deliveries and time.monotonic() < deadline:
                deliveries = api.get(f"/v1/videos/{self.job}/webhook_deliveries").json()["data"]
                time.sleep(0.1)
            assert deliveries
            self.delivery = deliveries[0]["id"]
        with gateway.client(self.b) as api:
            self.b_job = wait_status(api, api.post("/v1/videos", json=SMALL).json()["id"], {"completed"})["id"]


@pytest.fixture(scope="module")
def receiver() -> Iterator[Bait]:
    b = Bait()
    yield b
    b.stop()


@pytest.fixture(scope="module")
def owners(gateway: GatewayProcess, receiver: Bait) -> Owners:
    return Owners(gateway, f"http://127.0.0.1:{receiver.port}/hook")


def envelope(r: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, (r.status_code, r.text)
    err = r.json()["error"]
    assert err["request_id"] == r.headers["x-request-id"] and err["message"]
    if code is not None:
        assert err["code"] == code, err
    return err


def ws_close_code(gateway: GatewayProcess, path: str, key: str) -> int:
    url = gateway.base_url.replace("http://", "ws://", 1) + path
    with connect(url, additional_headers={"Authorization": f"Bearer {key}"}, proxy=None, open_timeout=10) as ws:
        try:
            while True:
                ws.recv(timeout=10)
        except ConnectionClosed as exc:
            assert exc.rcvd is not None
            return exc.rcvd.code


def test_owner_isolation_on_every_route(gateway: GatewayProcess, owners: Owners) -> None:
    job, delivery = owners.job, owners.delivery
    tried = 0
    with gateway.client(owners.b) as stranger, gateway.client(owners.a) as owner:
        calls = [
            ("GET", f"/v1/videos/{job}", None),
            ("GET", f"/v1/videos/{job}/content", None),
            ("HEAD", f"/v1/videos/{job}/content", None),
            ("POST", f"/v1/videos/{job}/download_url", {}),
            ("POST", f"/v1/videos/{job}/cancel", None),
            ("DELETE", f"/v1/videos/{job}", None),
            ("GET", f"/v1/videos/{job}/events", None),
            ("GET", f"/v1/videos/{job}/webhook_deliveries", None),
            ("POST", f"/v1/videos/{job}/webhook_deliveries/{delivery}/redeliver", None),
            ("POST", f"/v1/videos/{job}/stream_token", {}),
            ("GET", f"/openai/v1/videos/{job}", None),
            ("GET", f"/openai/v1/videos/{job}/content", None),
            ("DELETE", f"/openai/v1/videos/{job}", None),
        ]
        for method, path, body in calls:
            r = stranger.request(method, path, json=body)
            tried += 1
            if method == "HEAD":
                assert r.status_code == 404, (method, path)
            else:
                envelope(r, 404, "not_found")
        assert ws_close_code(gateway, f"/v1/async/video/{job}/ws", owners.b) == 4404
        tried += 1
        listed = {v["id"] for v in stranger.get("/v1/videos", params={"limit": 100}).json()["data"]}
        assert job not in listed and owners.b_job in listed
        # The owner still has everything: none of the stranger's calls did anything.
        assert owner.get(f"/v1/videos/{job}").json()["status"] == "completed"
        assert owner.get(f"/v1/videos/{job}/content").status_code == 200
        assert owner.get(f"/v1/videos/{job}/webhook_deliveries").json()["data"][0]["id"] == delivery
        # Usage counts one's own charges only.
        mine, theirs = owner.get("/v1/usage").json(), stranger.get("/v1/usage").json()
        a_cost = -sum(
            a
            for (a,) in rows(
                gateway,
                "SELECT amount FROM ledger WHERE owner_id = "
                "(SELECT owner_id FROM jobs WHERE id = ?) AND kind = 'charge'",
                job,
            )
        )
        b_cost = -sum(
            a
            for (a,) in rows(
                gateway,
                "SELECT amount FROM ledger WHERE owner_id = "
                "(SELECT owner_id FROM jobs WHERE id = ?) AND kind = 'charge'",
                owners.b_job,
            )
        )
        assert sum(d["jobs"] for d in mine["by_day"]) == 1 and sum(d["jobs"] for d in theirs["by_day"]) == 1
        assert round(sum(d["cost"] for d in mine["by_day"]) * 1e6) == a_cost
        assert round(sum(d["cost"] for d in theirs["by_day"]) * 1e6) == b_cost
    print(
        f"\nisolation [{gateway.backend}]: {tried} routes tried with another owner's ids: all 404 "
        "(websocket closed 4404); list and usage show only one's own"
    )


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


def test_keys_stored_hashed_and_never_logged(gateway: GatewayProcess, owners: Owners) -> None:
    dump = database_text(gateway)
    for key in (owners.a, owners.b):
        assert key not in dump
        assert hashlib.sha256(key.encode()).hexdigest() in dump  # stored, as its hash
    stored = rows(gateway, "SELECT key_hash, prefix FROM api_keys")
    assert all(re.fullmatch(r"[0-9a-f]{64}", h) and len(p) <= 10 for h, p in stored)
    log = gateway.log_path.read_text(errors="replace")
    assert owners.a not in log and owners.b not in log and ADMIN_KEY not in log
    print(
        f"\nkeys [{gateway.backend}]: {len(stored)} keys stored as sha256 only; "
        f"no key in {len(dump)} characters of database or {len(log)} of log"
    )


def test_revocation_takes_effect_on_the_next_request(gateway: GatewayProcess) -> None:
    key = gateway.new_key("revoked")
    with gateway.client(key) as api, gateway.admin() as admin:
        assert api.get("/v1/videos").status_code == 200  # cached as valid now
        key_id = next(k["id"] for k in admin.get("/v1/admin/keys").json()["data"] if key.startswith(k["prefix"]))
        assert admin.delete(f"/v1/admin/keys/{key_id}").json()["revoked_at"] is not None
        envelope(api.get("/v1/videos"), 401, "unauthorized")
        envelope(api.post("/v1/videos", json=SMALL), 401, "unauthorized")


def test_signed_links(gateway: GatewayProcess, owners: Owners) -> None:
    secret = (gateway.data_dir / "signing_secret").read_text().strip()
    job, other = owners.job, owners.b_job
    with gateway.client(owners.a) as api:
        url = api.post(f"/v1/videos/{job}/download_url", json={"ttl_seconds": 600}).json()["url"]
    if not url.startswith("/v1/"):  # an S3 store answers its own presigned URL; check the gateway's links too
        url = sign_path(secret, job, 0, "attachment", int(time.time()) + 600)
    path, query = urlsplit(url).path, dict(parse_qsl(urlsplit(url).query))
    anon = httpx.Client(base_url=gateway.base_url, timeout=30)
    assert anon.get(url).status_code == 200

    def get(p: str, **changes: Any) -> httpx.Response:
        return anon.get(p + "?" + urlencode({**query, **changes}))

    sig = query["signature"]
    tampered = {
        "index": get(path, index="1"),
        "disposition": get(path, disposition="inline"),
        "expires": get(path, expires=str(int(query["expires"]) + 1)),
        "signature": get(path, signature=("0" if sig[0] != "0" else "1") + sig[1:]),
        "signature (truncated)": get(path, signature=sig[:-2]),
        "signature (non-ASCII)": get(path, signature="é" * 64),
        "another job": get(path.replace(job, other)),
        "no signature": anon.get(path + "?" + urlencode({k: v for k, v in query.items() if k != "signature"})),
    }
    expired = sign_path(secret, job, 0, "attachment", int(time.time()) - 1)  # genuine, and past its expiry
    tampered["replayed after expiry"] = anon.get(expired)
    for what, r in tampered.items():
        assert r.status_code == 403, (what, r.status_code, r.text)
        envelope(r, 403, "forbidden")
    anon.close()
    print(
        f"\nsigned links [{gateway.backend}]: the genuine link works; {len(tampered)} altered, "
        f"expired or foreign uses refused with 403: {', '.join(tampered)}"
    )


def test_body_limit(gateway: GatewayProcess, key: str) -> None:
    # Raw sockets that stop sending once past the limit, so the answer is read rather than lost to a
    # reset of an upload the server stopped reading.
    status, body = raw_post(gateway, "/v1/videos", key, declared=(1 << 20) + 1)
    assert status == 413 and b'"payload_too_large"' in body, (status, body[:300])
    # No Content-Length: the limit holds while the body streams in.
    status, body = raw_post(gateway, "/v1/videos", key, chunked=(1 << 20) + (128 << 10))
    assert status == 413 and b'"payload_too_large"' in body, (status, body[:300])
    with gateway.admin() as admin:
        envelope(admin.post("/v1/admin/keys", json={"name": "z" * (32 << 10)}), 413, "payload_too_large")


def raw_post(
    gateway: GatewayProcess, path: str, key: str, *, declared: int | None = None, chunked: int = 0
) -> tuple[int, bytes]:
    """POST a body that is too big: only headers declaring ``declared`` bytes, or ``chunked`` bytes in chunks."""
    length = f"Content-Length: {declared}" if declared is not None else "Transfer-Encoding: chunked"
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
            f"Content-Type: application/json\r\n{length}\r\n\r\n".encode()
        )
        chunk = b"y" * (64 << 10)
        for _ in range(chunked // len(chunk)):
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        answer = b""
        while b"\r\n\r\n" not in answer or len(answer) < answer.index(b"\r\n\r\n") + 60:
            data = sock.recv(65536)
            if not data:
                break
            answer += data
    return int(answer.split(b" ", 2)[1]), answer


def test_rate_limit_per_key(gateway: GatewayProcess) -> None:
    key = gateway.new_key("throttled")
    with gateway.admin() as admin:
        key_id = next(k["id"] for k in admin.get("/v1/admin/keys").json()["data"] if key.startswith(k["prefix"]))
        admin.patch(f"/v1/admin/keys/{key_id}/limits", json={"rate_per_second": 2, "rate_burst": 3})
    with gateway.client(key) as api, gateway.client(gateway.new_key("neighbour")) as neighbour:
        statuses = [api.get("/v1/videos").status_code for _ in range(10)]
        assert statuses[:3] == [200, 200, 200] and statuses.count(429) >= 6, statuses
        r = api.get("/v1/videos")
        err = envelope(r, 429, "rate_limited")
        assert int(r.headers["retry-after"]) >= 1 and err["details"]["limit"] == "requests"
        assert neighbour.get("/v1/videos").status_code == 200  # one key's limit is its own


def test_concurrent_jobs_cap(gateway: GatewayProcess) -> None:
    key = gateway.new_key("capped")
    with gateway.admin() as admin:
        key_id = next(k["id"] for k in admin.get("/v1/admin/keys").json()["data"] if key.startswith(k["prefix"]))
        admin.patch(f"/v1/admin/keys/{key_id}/limits", json={"max_concurrent_jobs": 1})
    with gateway.client(key) as api:
        first = api.post("/v1/videos", json={**SMALL, "duration": 20, "size": "1920x1080"}).json()["id"]
        r = api.post("/v1/videos", json=SMALL)
        err = envelope(r, 429, "rate_limited")
        assert err["details"]["limit"] == "concurrent_jobs" and r.headers["retry-after"]
        assert api.post(f"/v1/videos/{first}/cancel").status_code == 200
        assert api.post("/v1/videos", json=SMALL).status_code == 202  # a slot is free again
    check_ledger(gateway)


# ---- provider credentials ---------------------------------------------------------------------

OPENAI_KEY = "sk-canary-" + hashlib.sha256(b"openai canary").hexdigest()[:32]
RUNWAY_KEY = "key_canary" + hashlib.sha256(b"runway canary").hexdigest()[:40]


@pytest.fixture(scope="module")
def credential_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[GatewayProcess, OpenAIFake]]:
    openai = OpenAIFake(api_key=OPENAI_KEY, polls_to_complete=2)
    runway = RunwayFake(api_key="key_the_one_runway_expects")  # the gateway holds another: every call is a 401
    servers = [FakeUpstream(openai.app).start(), FakeUpstream(runway.app).start()]
    root = tmp_path_factory.mktemp("credentials")
    config = root / "providers.toml"
    config.write_text(
        f'[providers.openai]\napi_key = "{OPENAI_KEY}"\nbase_url = "{servers[0].base_url}/v1"\n'
        f"poll_interval_seconds = 0.1\ntimeout_seconds = 1.0\n\n"
        f'[providers.runway]\napi_key = "{RUNWAY_KEY}"\nbase_url = "{servers[1].base_url}"\n'
        f"poll_interval_seconds = 0.1\ntimeout_seconds = 1.0\n"
    )
    gw = GatewayProcess(root / "gw", env={"VIDGATE_CONFIG": str(config), "VIDGATE_LOG_LEVEL": "DEBUG"}).start()
    yield gw, openai
    gw.stop()
    for s in servers:
        s.stop()


def test_provider_credentials_never_leak(credential_gateway: tuple[GatewayProcess, OpenAIFake]) -> None:
    gw, openai = credential_gateway
    bodies: list[bytes] = []

    def keep(response: httpx.Response) -> None:
        response.read()
        bodies.append(response.content + str(response.headers).encode())

    key = gw.new_key("credentials", balance=100.0)
    with httpx.Client(
        base_url=gw.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30, event_hooks={"response": [keep]}
    ) as api:
        sora = {"model": "openai/sora-2", "duration": 4, "size": "1280x720", "prompt": "a canary in a coal mine"}

        def submitted(job: dict[str, Any]) -> str:  # each fault below is meant for the next create only
            return wait_status(api, job["id"], {"processing", *TERMINAL}, timeout=30)["id"]

        ok = submitted(api.post("/v1/videos", json=sora).json())
        openai.fail_next = "moderation"
        moderated = submitted(api.post("/v1/videos", json=sora).json())
        openai.faults.add("create", "500")
        refused = submitted(api.post("/v1/videos", json=sora).json())
        openai.faults.add("poll", "malformed")
        openai.faults.add("download", "503")
        retried = submitted(api.post("/v1/videos", json=sora).json())
        unauthorized = api.post("/v1/videos", json={"model": "runway/gen-4.5", "prompt": "x", "duration": 5}).json()
        jobs = [ok, moderated, refused, retried, unauthorized["id"]]
        final = {j: wait_status(api, j, TERMINAL, timeout=60) for j in jobs}
        # The answered 500 is a definite refusal of a single-provider model: sent again later, it completes.
        assert final[ok]["status"] == final[retried]["status"] == final[refused]["status"] == "completed"
        assert {final[j]["status"] for j in (moderated, unauthorized["id"])} == {"failed"}
        for j in jobs:
            api.get(f"/v1/videos/{j}/events")
            api.get(f"/v1/videos/{j}/content")
        api.get("/v1/videos", params={"limit": 100})
        api.get("/v1/videos/models")
        api.get("/v1/usage")
        api.get("/metrics")
        api.get("/openapi.json")
        api.get("/readyz")
    log = gw.log_path.read_text(errors="replace")
    dump = database_text(gw)
    for secret in (OPENAI_KEY, RUNWAY_KEY):
        assert all(secret.encode() not in b for b in bodies), secret
        assert secret not in log and secret not in dump, secret
    print(
        f"\ncredentials: {len(bodies)} responses (success, moderation, 500, malformed, 503, 401 paths), "
        f"{len(log)} characters of log and the database: no provider key anywhere"
    )


# ---- private addresses, under strace ----------------------------------------------------------


class TracedGateway(GatewayProcess):
    """A gateway whose process tree runs under ``strace -f -e trace=connect``."""

    def __init__(self, data_dir: Path, **kwargs: Any) -> None:
        super().__init__(data_dir, **kwargs)
        self.trace = data_dir / "connect.trace"

    def start(self, timeout: float = 60.0) -> GatewayProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [
            sys.executable,
            "-m",
            "vidgate.cli.main",
            "serve",
            "--data-dir",
            str(self.data_dir),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        if shutil.which("strace"):
            args = ["strace", "-f", "-qq", "--seccomp-bpf", "-e", "trace=connect", "-o", str(self.trace), *args]
        self.proc = subprocess.Popen(
            args, env=self.env, stdout=self.log_path.open("ab"), stderr=subprocess.STDOUT, start_new_session=True
        )
        self.wait_ready(timeout)
        return self

    def connects(self) -> set[str]:
        """Every ``address:port`` the gateway's processes tried to connect to."""
        if not self.trace.exists():
            return set()
        found = re.findall(
            r'sin6?_port=htons\((\d+)\).*?inet_(?:addr|pton)\((?:AF_INET6, )?"([^"]+)"', self.trace.read_text()
        )
        return {f"{addr}:{port}" for port, addr in found}


@pytest.fixture(scope="module")
def locked_down(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TracedGateway, FakeUpstream]]:
    # The operator's own upstream on loopback is allowed (only user-given URLs are guarded): its
    # connections show that the trace sees every connect().
    upstream = FakeUpstream(OpenAIFake(api_key="sk-operator", polls_to_complete=1).app).start()
    root = tmp_path_factory.mktemp("locked")
    config = root / "providers.toml"
    config.write_text(
        f'[providers.openai]\napi_key = "sk-operator"\nbase_url = "{upstream.base_url}/v1"\n'
        "poll_interval_seconds = 0.1\n"
    )
    env = {"VIDGATE_ALLOW_PRIVATE_URLS": "0", "VIDGATE_MAX_WEBSOCKETS_PER_KEY": "3", "VIDGATE_CONFIG": str(config)}
    gw = TracedGateway(root / "gw", env=env)
    gw.start()
    yield gw, upstream
    gw.stop()
    upstream.stop()


def test_private_addresses_refused(locked_down: tuple[TracedGateway, FakeUpstream], bait: Bait) -> None:
    gw, upstream = locked_down
    loopback = f"https://127.0.0.1:{bait.port}"
    targets = {
        "10.x": "https://10.11.12.13/hook",
        "192.168.x": "https://192.168.1.20/hook",
        "loopback": f"{loopback}/hook",
        "loopback [::1]": f"https://[::1]:{bait.port}/hook",
        "localhost": f"https://localhost:{bait.port}/hook",
        "metadata 169.254.169.254": "https://169.254.169.254/latest/meta-data/",
        "redirecting to loopback": f"{loopback}/redirect",
    }
    key = gw.new_key("ssrf", balance=50.0)
    hooks, refs = {}, {}
    with gw.client(key) as api:
        control = api.post("/v1/videos", json={"model": "openai/sora-2", "prompt": "control", "duration": 4})
        assert wait_status(api, control.json()["id"], TERMINAL, timeout=30)["status"] == "completed"
        for name, url in targets.items():
            r = api.post("/v1/videos", json={**SMALL, "webhook": {"url": url, "secret": SECRET}})
            assert r.status_code == 202, r.text
            hooks[name] = r.json()["id"]
            image = url.replace("/hook", "/frame.png").replace("/latest/meta-data/", "/frame.png")
            ref = [{"type": "image_url", "role": "first_frame", "image_url": {"url": image}}]
            r = api.post("/v1/videos", json={**SMALL, "input_references": ref})
            assert r.status_code == 202, r.text
            refs[name] = r.json()["id"]
        # Plain http:// is refused at create, before any job depends on it.
        plain = f"http://127.0.0.1:{bait.port}"
        r = api.post("/v1/videos", json={**SMALL, "webhook": {"url": f"{plain}/hook", "secret": SECRET}})
        assert r.status_code == 400 and r.json()["error"]["param"] == "webhook.url", r.text
        ref = [{"type": "image_url", "role": "first_frame", "image_url": {"url": f"{plain}/frame.png"}}]
        r = api.post("/v1/videos", json={**SMALL, "input_references": ref})
        assert r.status_code == 400 and r.json()["error"]["param"] == "input_references[0].image_url.url", r.text
        for name, job in refs.items():
            done = wait_status(api, job, TERMINAL, timeout=30)
            assert done["status"] == "failed" and done["error"]["code"] == "input_reference_unavailable", (name, done)
            assert re.search(r"private|reserved|https", done["error"]["message"]), (name, done["error"])
        for name, job in hooks.items():
            assert wait_status(api, job, TERMINAL, timeout=30)["status"] == "completed"
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                deliveries = api.get(f"/v1/videos/{job}/webhook_deliveries").json()["data"]
                if deliveries and all(d["status"] != "pending" for d in deliveries):
                    break
                time.sleep(0.1)
            assert deliveries and all(d["status"] == "failed" for d in deliveries), (name, deliveries)
            assert all(d["last_error"].startswith("not sent") and d["last_status_code"] is None for d in deliveries)
    assert bait.seen == [], bait.seen
    operator = f"127.0.0.1:{upstream.port}"
    if gw.trace.exists():
        assert gw.connects() == {operator}, gw.connects()  # the upstream only: nothing user-given
        traced = f"under strace the gateway's only connect() calls went to its configured upstream ({operator})"
    else:
        traced = "(strace is not installed: only the bait was checked)"
    print(
        f"\nSSRF: {len(targets)} webhook and {len(targets)} input-reference URLs ({', '.join(targets)}) refused "
        f"with VIDGATE_ALLOW_PRIVATE_URLS=0; the loopback bait saw 0 requests; {traced}"
    )


def test_redirect_from_a_public_address_to_loopback_is_refused(bait: Bait) -> None:
    """A public URL that redirects into the private network stops at the redirect (in-process, no network:
    the public hop is answered by a mock transport)."""
    hops: list[str] = []

    def public(request: httpx.Request) -> httpx.Response:
        hops.append(str(request.url))
        return httpx.Response(302, headers={"location": f"https://127.0.0.1:{bait.port}/frame.png"})

    async def go() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(public)) as client:
            with pytest.raises(BlockedURL, match="private or reserved"):
                await fetch_image(
                    client, "first_frame", "https://93.184.216.34/frame.png", allow_private=False, max_bytes=1 << 20
                )

    asyncio.run(go())
    assert hops == ["https://93.184.216.34/frame.png"] and bait.seen == []


def test_open_streams_capped_per_key(locked_down: tuple[TracedGateway, FakeUpstream]) -> None:
    gw, _ = locked_down
    key = gw.new_key("streams")
    with gw.client(key) as api:
        job = wait_status(api, api.post("/v1/videos", json=SMALL).json()["id"], {"completed"})["id"]
        url = gw.base_url.replace("http://", "ws://", 1) + f"/v1/async/video/{job}/ws?close_on_terminal=false"
        headers = {"Authorization": f"Bearer {key}"}
        with contextlib.ExitStack() as stack:
            held = [
                stack.enter_context(connect(url, additional_headers=headers, proxy=None, open_timeout=10))
                for _ in range(3)
            ]
            for ws in held:
                assert '"job.snapshot"' in ws.recv(timeout=10)
            with connect(url, additional_headers=headers, proxy=None, open_timeout=10) as extra:
                with pytest.raises(ConnectionClosed) as closed:
                    extra.recv(timeout=10)
                assert closed.value.rcvd is not None and closed.value.rcvd.code == 4429
            r = api.get(f"/v1/videos/{job}/events")  # server-sent events share the same cap
            assert r.status_code == 429 and r.headers["retry-after"] and r.json()["error"]["code"] == "rate_limited"
        time.sleep(0.5)
        with connect(url, additional_headers=headers, proxy=None, open_timeout=10) as again:
            assert '"job.snapshot"' in again.recv(timeout=10)  # slots are given back on close
