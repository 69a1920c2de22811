"""Security properties through the shared gateway process (both backends).

Owner isolation on every route, keys stored only hashed and never logged, revocation effective on
the very next request, signed links refused when tampered with, expired or used on another job, and
the abuse limits (body size, request rate, concurrent jobs). Nothing here sends traffic anywhere but
loopback; the dedicated gateways' properties are in ``test_security_dedicated``.
"""

from __future__ import annotations

import hashlib
import re
import socket
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pytest
from helpers.backends import rows
from helpers.envelope import envelope
from helpers.gateway import ADMIN_KEY, GatewayProcess, wait_status
from helpers.ledger import check_ledger
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from reliability.security_support import SECRET, SMALL, Bait, database_text
from vidgate.gateway.jobs.signing import sign_path

pytestmark = pytest.mark.both_backends


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
        started, answers = time.monotonic(), []
        while len(answers) < 40 and not any(r.status_code == 429 for r in answers):  # asks until one is refused
            answers.append(api.get("/v1/videos"))
        elapsed = time.monotonic() - started
        statuses = [r.status_code for r in answers]
        assert statuses[:3] == [200, 200, 200] and statuses[-1] == 429 and set(statuses) <= {200, 429}, statuses
        # The burst, what refilled while the requests went on (however slowly answered), one at the boundary.
        assert statuses.count(200) <= 3 + 2 * elapsed + 1, (statuses, elapsed)
        r = answers[-1]
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
