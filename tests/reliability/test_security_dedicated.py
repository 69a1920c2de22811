"""Security properties through dedicated gateway processes (both backends).

Provider credentials never reach a response or a log; with ``VIDGATE_ALLOW_PRIVATE_URLS=0`` no
webhook or input reference reaches a private, loopback or link-local address, not even through a
redirect, and under strace not one connect() is attempted; and the per-key cap on open streams.
Nothing here sends traffic anywhere but loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fakes.openai_fake import OpenAIFake
from fakes.runway_fake import RunwayFake
from fakes.server import FakeUpstream
from helpers.gateway import GatewayProcess, wait_status
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from reliability.security_support import SECRET, SMALL, TERMINAL, Bait, database_text
from vidgate.gateway.net import BlockedURL, fetch_image

pytestmark = pytest.mark.both_backends


@pytest.fixture(scope="module")
def bait() -> Iterator[Bait]:
    b = Bait()
    yield b
    b.stop()


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
        # Slots are given back on close: once the server has finished with the closed ones, a new one opens.
        deadline, first = time.monotonic() + 30, ""
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(ConnectionClosed),
                connect(url, additional_headers=headers, proxy=None, open_timeout=10) as again,
            ):
                first = again.recv(timeout=10)
                break
            time.sleep(0.1)
        assert '"job.snapshot"' in first
