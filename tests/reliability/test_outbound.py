"""Outbound calls: DNS rebinding, one tenant's receiver holding up another's, and deliveries that fail oddly.

DNS cannot be faked on the wire, so the rebinding tests run in process and replace the event loop's
``getaddrinfo`` (what every client here resolves through): a name answers 127.0.0.2 (a
loopback address these tests pretend is public) and then 127.0.0.1, where a bait server counts every
TCP connection. Nothing dials anything but loopback. The other tests run real gateway processes
against loopback receivers.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import re
import socket
import sqlite3
import ssl
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fakes.server import FakeUpstream, free_port
from helpers.gateway import GatewayProcess, wait_status
from helpers.media import png_bytes
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from vidgate.gateway import net, outbound
from vidgate.gateway.events.webhooks import Deliverer
from vidgate.gateway.providers import http as provider_http
from vidgate.gateway.providers.base import PollFailed, ProviderConfig
from vidgate.gateway.providers.http import make_client, stream_url
from vidgate.gateway.settings import Settings
from vidgate.gateway.worker.context import WorkerContext
from vidgate.gateway.worker.outputs import download

PUBLIC = "127.0.0.2"  # stands in for a public address: the tests tell the guard so
INSIDE = "127.0.0.1"
NAMES = ("rebind.test", "steady.test", "inside.test")
IP = re.compile(r"\d+\.\d+\.\d+\.\d+|::1|\[::")
SECRET = "whsec_" + "c2VjdXJpdHktd2ViaG9vay1zZWNyZXQtMzItYnl0ZXM="
MODEL = "vidgate/procedural"
SMALL = {"model": MODEL, "prompt": "two tenants", "duration": 1, "size": "160x90"}
TERMINAL = {"completed", "failed", "cancelled", "expired"}


# ---- DNS rebinding, in process ------------------------------------------------------------------


def tls_pair() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context with a certificate for the test names and a client context trusting only its CA."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "outbound test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, NAMES[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in NAMES]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    with_key = leaf.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with tempfile.TemporaryDirectory() as tmp:
        (pem := Path(tmp) / "server.pem").write_bytes(with_key)
        server.load_cert_chain(pem)
    client = ssl.create_default_context(cadata=ca.public_bytes(serialization.Encoding.PEM).decode())
    return server, client


@dataclass
class Lab:
    """The "public" TLS server on 127.0.0.2 and the bait on 127.0.0.1, on one port; DNS answers per name."""

    answers: dict[str, list[str]]
    port: int = 0
    lookups: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    bait_connections: int = 0
    requests: list[dict[str, str]] = field(default_factory=list)
    sni: list[str | None] = field(default_factory=list)

    def url(self, name: str, path: str) -> str:
        return f"https://{name}:{self.port}{path}"

    async def getaddrinfo(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        name = host.decode() if isinstance(host, bytes) else host
        if name not in self.answers:
            raise socket.gaierror(socket.EAI_NONAME, "not a test name")
        seq = self.answers[name]
        address = seq[min(self.lookups[name], len(seq) - 1)]
        self.lookups[name] += 1
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, int(port or 0)))]


async def _serve_http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, lab: Lab) -> None:
    try:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        method, path, _ = head[0].split(" ", 2)
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in head[1:] if line)}
        await reader.readexactly(int(headers.get("content-length", "0")))
        lab.requests.append({"method": method, "path": path, "host": headers.get("host", "")})
        body, ctype = (png_bytes((1, 2, 3)), "image/png") if path.endswith(".png") else (b"x" * 4096, "video/mp4")
        answer = f"HTTP/1.1 200 OK\r\ncontent-type: {ctype}\r\ncontent-length: {len(body)}\r\nconnection: close\r\n\r\n"
        writer.write(answer.encode() + body)
        await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
        pass
    finally:
        writer.close()


async def _listen(the_lab: Lab, server_tls: ssl.SSLContext) -> tuple[asyncio.Server, asyncio.Server]:
    """The bait (counting bare TCP connections) and the TLS server, on one port number."""

    def bait(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        the_lab.bait_connections += 1
        writer.close()

    for _ in range(20):
        the_lab.port = free_port()
        try:
            trap = await asyncio.start_server(bait, INSIDE, the_lab.port)
        except OSError:
            continue
        try:
            return trap, await asyncio.start_server(
                lambda r, w: _serve_http(r, w, the_lab), PUBLIC, the_lab.port, ssl=server_tls
            )
        except OSError:
            trap.close()
    raise RuntimeError("no port free on both loopback addresses")


@asynccontextmanager
async def lab(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Lab]:
    """Servers, fake DNS, 127.0.0.2 counted as public, and the clients trusting the test CA."""
    server_tls, client_tls = tls_pair()
    the_lab = Lab(answers={"rebind.test": [PUBLIC, INSIDE], "steady.test": [PUBLIC], "inside.test": [INSIDE]})
    server_tls.sni_callback = lambda _sock, name, _ctx: the_lab.sni.append(name)  # type: ignore[assignment]
    trap, public = await _listen(the_lab, server_tls)
    real_blocked = net._blocked_ip
    public_ip = ipaddress.ip_address(PUBLIC)
    monkeypatch.setattr(net, "_blocked_ip", lambda ip: ip != public_ip and real_blocked(ip))
    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", the_lab.getaddrinfo)
    monkeypatch.setattr(outbound, "_ssl_context", lambda: client_tls)
    monkeypatch.setattr(provider_http, "_ssl_context", lambda: client_tls)
    try:
        yield the_lab
    finally:
        monkeypatch.undo()
        trap.close()
        public.close()


def no_address_in(text: str) -> bool:
    return IP.search(text) is None


async def test_webhook_to_a_rebinding_name_never_reaches_loopback(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    async with lab(monkeypatch) as net_lab:
        deliverer = Deliverer(
            None,
            Settings(data_dir=tmp_path, allow_private_urls=False),  # type: ignore[arg-type]
        )  # type: ignore[arg-type]
        outcomes: list[tuple[int | None, str | None, bool]] = []
        url = ""

        async def request(row: Any) -> tuple[str, bytes, dict[str, str]]:
            return url, b"{}", {"content-type": "application/json"}

        async def record(row: Any, sent: Any, latency_ms: int) -> None:
            outcomes.append((sent.code, sent.error, sent.permanent))

        monkeypatch.setattr(deliverer, "_request", request)
        monkeypatch.setattr(deliverer, "_record", record)
        row = {"id": "whd_test", "url": "", "attempts": 0, "log": None, "created_at": 0}
        try:
            url = net_lab.url("rebind.test", "/hook")
            await deliverer.attempt(row)
            url = net_lab.url("steady.test", "/hook")  # a name that keeps its answer is delivered, by name
            await deliverer.attempt(row)
        finally:
            await deliverer.http.aclose()
        assert net_lab.bait_connections == 0
        (code, error, permanent), delivered = outcomes
        assert code is None and permanent and error is not None and "private or reserved" in error, outcomes
        assert no_address_in(error), error
        assert delivered == (200, None, False), delivered
        assert net_lab.requests == [{"method": "POST", "path": "/hook", "host": f"steady.test:{net_lab.port}"}]
        assert net_lab.sni == ["steady.test"]


async def test_input_reference_from_a_rebinding_name_never_reaches_loopback(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    async with lab(monkeypatch) as net_lab:
        # The client the worker fetches references with, made as the worker makes it.
        worker = SimpleNamespace(_http=None, settings=Settings(data_dir=tmp_path, allow_private_urls=False))
        client = WorkerContext.http.fget(worker)  # type: ignore[attr-defined]
        try:
            with pytest.raises(net.BlockedURL) as refused:
                await net.fetch_image(
                    client, "first_frame", net_lab.url("rebind.test", "/a.png"), allow_private=False, max_bytes=1 << 20
                )
            image = await net.fetch_image(
                client, "first_frame", net_lab.url("steady.test", "/b.png"), allow_private=False, max_bytes=1 << 20
            )
        finally:
            await client.aclose()
        assert net_lab.bait_connections == 0
        assert "private or reserved" in str(refused.value) and no_address_in(str(refused.value))
        assert image.mime_type == "image/png" and net_lab.sni == ["steady.test"]
        assert [r["host"] for r in net_lab.requests] == [f"steady.test:{net_lab.port}"]


async def test_output_download_from_a_named_host_dials_only_checked_addresses(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    async with lab(monkeypatch) as net_lab:
        upstream = f"https://upstream.test:{free_port()}"  # the configured upstream; never dialled here
        client = make_client(ProviderConfig(name="t", base_url=upstream), default_base_url=upstream)
        try:
            with pytest.raises(PollFailed) as refused:
                await download(stream_url(client, net_lab.url("inside.test", "/v.mp4")), tmp_path)
            with pytest.raises(PollFailed) as literal:
                await download(stream_url(client, f"https://{INSIDE}:{net_lab.port}/v.mp4"), tmp_path)
            # Looked up once by the connection itself: the address it checked is the one it dials.
            path = await download(stream_url(client, net_lab.url("rebind.test", "/v.mp4")), tmp_path)
        finally:
            await client.aclose()
        assert net_lab.bait_connections == 0
        for failure in (refused.value, literal.value):
            assert not failure.retryable and "private or reserved" in failure.message, failure
            assert no_address_in(failure.message), failure.message
        assert path.stat().st_size == 4096 and net_lab.lookups["rebind.test"] == 1
        assert net_lab.sni == ["rebind.test"] and net_lab.requests[0]["host"] == f"rebind.test:{net_lab.port}"


# ---- one tenant's hanging receiver, another tenant's deliveries ---------------------------------


class HangingReceiver:
    """Accepts connections and reads them, never answering; counts open and closed ones."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.cond = threading.Condition()
        self.open = self.closed = self.most_open = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.cond:
                self.open += 1
                self.most_open = max(self.most_open, self.open)
                self.cond.notify_all()
            threading.Thread(target=self._hold, args=(conn,), daemon=True).start()

    def _hold(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            while conn.recv(65536):
                pass
        with self.cond:
            self.open -= 1
            self.closed += 1
            self.cond.notify_all()

    def wait_open(self, n: int, timeout: float) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: self.open >= n, timeout), (self.open, self.closed)


def test_a_hanging_receiver_does_not_hold_up_another_tenant(tmp_path: Path) -> None:
    hanging = HangingReceiver()
    arrivals: list[tuple[str, int, float]] = []  # (event type, hanging attempts ended by then, when)
    arrived = threading.Event()

    async def hook(request: Request) -> Response:
        body = await request.json()
        with hanging.cond:
            arrivals.append((body["type"], hanging.closed, time.monotonic()))
        arrived.set()
        return Response(b"ok")

    normal = FakeUpstream(Starlette(routes=[Route("/hook", hook, methods=["POST"])])).start()
    # Attempts to the hanging receiver outlast the test, so "still hanging" cannot end by timing out.
    env = {"VIDGATE_WEBHOOK_TIMEOUT_SECONDS": "120"}
    gw = GatewayProcess(tmp_path / "gw", env=env, log_name="tenants").start()
    try:
        with gw.client(gw.new_key("slow tenant")) as slow, gw.client(gw.new_key("other tenant")) as other:
            changes = ["video.status_changed"]  # every status change: two deliveries a job
            hook = {"url": f"http://127.0.0.1:{hanging.port}/hook", "secret": SECRET, "events": changes}
            hooked = {**SMALL, "webhook": hook}
            jobs = [slow.post("/v1/videos", json=hooked).json()["id"] for _ in range(12)]
            for job in jobs:  # 12 jobs, 24 deliveries: more than the deliverer has slots in all
                wait_status(slow, job, TERMINAL)
            hanging.wait_open(4, timeout=30)
            time.sleep(0.5)  # every due delivery has been claimed by now
            other_hook = {"url": f"{normal.base_url}/hook", "secret": SECRET, "events": changes}
            created = time.monotonic()
            r = other.post("/v1/videos", json={**SMALL, "webhook": other_hook})
            assert r.status_code == 202, r.text
            assert arrived.wait(timeout=60), "the other tenant's first delivery never arrived"
            wait_status(other, r.json()["id"], TERMINAL)
            deadline = time.monotonic() + 30
            while len(arrivals) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
        with hanging.cond:
            still_open, most_open = hanging.open, hanging.most_open
    finally:
        gw.stop()
        normal.stop()
        hanging.sock.close()
    seen = ", ".join(
        f"{kind} after {at - created:.2f} s, {ended} hanging attempts over" for kind, ended, at in arrivals
    )
    print(f"\ntenants: the other tenant's deliveries: {seen}; the hanging receiver held {most_open} at most")
    assert [kind for kind, _, _ in arrivals] == ["video.status_changed", "video.completed"], arrivals
    assert all(ended == 0 for _, ended, _ in arrivals), arrivals  # arrived while every hanging attempt still hung
    assert still_open >= 1 and most_open <= Settings.webhook_max_in_flight_per_endpoint, (still_open, most_open)


# ---- a delivery that fails in an unexpected way ------------------------------------------------


def _delivery(db_path: Path, job_id: str) -> dict[str, Any]:
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as db:
        db.row_factory = sqlite3.Row
        return dict(db.execute("SELECT * FROM webhook_deliveries WHERE job_id = ?", (job_id,)).fetchone())


def test_a_delivery_that_fails_unexpectedly_is_backed_off_not_spun(tmp_path: Path) -> None:
    gw = GatewayProcess(tmp_path / "gw", log_name="unexpected").start()
    db_path = gw.data_dir / "vidgate.db"
    try:
        with gw.client(gw.new_key()) as api:
            hook = {"url": f"http://127.0.0.1:{free_port()}/hook", "secret": SECRET, "events": ["video.completed"]}
            job = api.post("/v1/videos", json={**SMALL, "webhook": hook}).json()["id"]
            wait_status(api, job, TERMINAL)
        deadline = time.monotonic() + 30
        # The first attempt, to a closed port, is over and the next is not about to start.
        while not (
            (row := _delivery(db_path, job))["attempts"] >= 1 and row["next_attempt_at"] > time.time() * 1000 + 1000
        ):
            assert time.monotonic() < deadline, row
            time.sleep(0.05)
        # A URL stored before create refused such URLs: it does not even parse.
        with sqlite3.connect(db_path) as db:
            db.execute(
                "UPDATE webhook_deliveries SET url = 'http://[::1/hook', attempts = 0, log = NULL, last_error = NULL, "
                "lease_until = NULL, next_attempt_at = ? WHERE job_id = ?",
                (int(time.time() * 1000), job),
            )
        deadline = time.monotonic() + 20
        while (row := _delivery(db_path, job))["attempts"] < 1:
            assert time.monotonic() < deadline, f"no attempt was counted: {row}"
            time.sleep(0.05)
        time.sleep(3)
        row = _delivery(db_path, job)
        log = gw.log_path.read_text()
    finally:
        gw.stop()
    print(
        f"\nunexpected failure: {row['attempts']} attempts counted in 3 s, next in "
        f"{(row['next_attempt_at'] - time.time() * 1000) / 1000:.1f} s; "
        f"{log.count(row['id'])} log lines mention it"
    )
    assert row["status"] == "pending" and 1 <= row["attempts"] <= 5, row
    assert row["last_error"] == "not sent: the delivery failed unexpectedly", row
    entries = orjson.loads(row["log"])
    assert len(entries) == row["attempts"] and all(e["error"] == row["last_error"] for e in entries), entries
    assert row["next_attempt_at"] is not None and row["next_attempt_at"] >= entries[-1]["at"] * 1000, row
    assert row["lease_until"] is None, row
    assert log.count(row["id"]) <= 10 * (row["attempts"] + 1), "the deliverer logged as if it spun"
