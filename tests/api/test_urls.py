"""Absolute URLs: on the public URL, else on the request's own origin (a trusted proxy's forwarded one),
the same in the poll's fast path, its route, the other routes, the aliases and the job's events."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from vidgate.gateway.api import routes
from vidgate.gateway.app import create_app
from vidgate.gateway.base_url import BaseURL, parse_networks, public_url, websocket_base
from vidgate.gateway.settings import load_settings
from vidgate.types import JobEvent

ADMIN = "vg_admin_urls_test_key"
JOB = {"model": "vidgate/procedural", "prompt": "a slow pan over hills", "duration": 1, "size": "160x90"}
LOCAL = ("127.0.0.1", 50000)
OUTSIDE = ("203.0.113.9", 50000)


def scope(headers: dict[str, str], client: tuple[str, int] | None = LOCAL, scheme: str = "http") -> dict[str, Any]:
    return {
        "type": "http",
        "scheme": scheme,
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": client,
        "server": ("10.0.0.5", 8080),
    }


def test_the_request_origin_and_what_a_trusted_proxy_forwards() -> None:
    urls = BaseURL("", parse_networks("127.0.0.0/8, ::1"))
    assert urls.of(scope({"Host": "vidgate.test:8080"})) == "http://vidgate.test:8080"
    assert urls.of(scope({"Host": "Vidgate.TEST"}, scheme="wss")) == "https://vidgate.test"
    forwarded = {"Host": "10.0.0.5:8080", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "videos.example, proxy"}
    assert urls.of(scope(forwarded)) == "https://videos.example"
    assert urls.of(scope(forwarded, client=OUTSIDE)) == "http://10.0.0.5:8080"  # anyone could send those
    assert urls.of(scope(forwarded, client=None)) == "http://10.0.0.5:8080"
    assert urls.of(scope({"Host": "a.test", "X-Forwarded-Proto": "gopher"})) == "http://a.test"
    for bad in ("evil.test/path", "a b", "x" * 300, "h.test:99999999"):
        assert urls.of(scope({"Host": bad})) == "http://10.0.0.5:8080", bad
    assert urls.of(scope({})) == "http://10.0.0.5:8080"  # HTTP/1.0: no Host
    assert urls.of({**scope({}), "server": ("::1", 443)}) == "http://[::1]:443"
    assert urls.of({**scope({}, scheme="https"), "server": ("h.test", 443)}) == "https://h.test"
    anyone = BaseURL("", parse_networks("*"))
    assert anyone.of(scope(forwarded, client=OUTSIDE)) == "https://videos.example"
    nobody = BaseURL("", parse_networks(""))
    assert nobody.of(scope(forwarded)) == "http://10.0.0.5:8080"


def test_the_public_url_wins_and_bad_settings_are_refused(tmp_path: Path) -> None:
    urls = BaseURL("https://videos.example.com/gw/", parse_networks("*"))
    assert urls.of(scope({"Host": "a.test", "X-Forwarded-Host": "b.test"})) == "https://videos.example.com/gw"
    assert websocket_base("https://h.test") == "wss://h.test" and websocket_base("http://h.test:1") == "ws://h.test:1"
    assert websocket_base("") == ""
    for value in ("videos.example.com", "ftp://x.test", "https://x.test/?q=1"):
        with pytest.raises(ValueError, match="VIDGATE_PUBLIC_URL"):
            public_url(value)
    with pytest.raises(ValueError, match="VIDGATE_TRUSTED_PROXIES"):
        load_settings(env={"VIDGATE_TRUSTED_PROXIES": "not-an-address"}, data_dir=tmp_path)
    settings = load_settings(env={"VIDGATE_PUBLIC_URL": "https://v.test/"}, data_dir=tmp_path)
    assert (
        settings.public_url == "https://v.test" and settings.base_url.of(scope({"Host": "a.test"})) == "https://v.test"
    )


Clients = Callable[..., httpx.AsyncClient]


class Recorder:
    """A bus sink keeping every event published: what webhooks and streams are sent."""

    def __init__(self, seen: list[JobEvent]) -> None:
        self.seen = seen

    def publish(self, event: JobEvent) -> None:
        self.seen.append(event)


@pytest.fixture
async def app_client(tmp_path: Path) -> AsyncIterator[tuple[Any, Clients, list[JobEvent]]]:
    """The whole app in process, a maker of clients with their own key and headers, and its events."""
    app = create_app(load_settings(env={}, data_dir=tmp_path, admin_key=ADMIN), run_worker=False)
    seen: list[JobEvent] = []
    async with app.router.lifespan_context(app):
        app.state.gateway.bus.add_sink(Recorder(seen))
        transport = httpx.ASGITransport(app=app)  # the peer is 127.0.0.1: a trusted proxy by default
        async with httpx.AsyncClient(transport=transport, base_url="http://vidgate.test") as admin:
            r = await admin.post("/v1/admin/keys", json={"name": "urls"}, headers={"Authorization": f"Bearer {ADMIN}"})
            key = r.json()["key"]
        opened: list[httpx.AsyncClient] = []

        def client(base: str = "http://vidgate.test", **headers: str) -> httpx.AsyncClient:
            c = httpx.AsyncClient(
                transport=transport, base_url=base, headers={"Authorization": f"Bearer {key}", **headers}
            )
            opened.append(c)
            return c

        yield app, client, seen
        for c in opened:
            await c.aclose()


async def test_every_answer_and_the_jobs_events_use_the_origin_it_was_asked_on(
    app_client: tuple[Any, Clients, list[JobEvent]],
) -> None:
    _, client, seen = app_client
    api = client("http://a.test:8080")
    job = (await api.post("/v1/videos", json=JOB)).json()
    vid = job["id"]
    assert job["polling_url"] == f"http://a.test:8080/v1/videos/{vid}"
    assert job["websocket_url"] == f"ws://a.test:8080/v1/async/video/{vid}/ws"
    created = next(e for e in seen if e.data.id == vid)
    assert created.data.polling_url == job["polling_url"]  # events and webhooks have no request: the create's
    for other, expect in (
        (client("http://b.test"), "http://b.test"),
        (
            client("http://b.test", **{"X-Forwarded-Proto": "https", "X-Forwarded-Host": "v.example"}),
            "https://v.example",
        ),
    ):
        for path in (f"/v1/videos/{vid}", f"/v1/video/generations/{vid}"):  # the fast path
            assert (await other.get(path)).json()["cancel_url"] == f"{expect}/v1/videos/{vid}/cancel", path
        listed = (await other.get("/v1/videos")).json()["data"][0]
        assert listed["polling_url"] == f"{expect}/v1/videos/{vid}"
        token = (await other.post(f"/v1/videos/{vid}/stream_token")).json()
        assert token["url"] == f"{websocket_base(expect)}/v1/async/video/{vid}/ws?token={token['token']}"
    cancelled = (await api.post(f"/v1/video/generations/{vid}/cancel")).json()
    assert cancelled["status"] == "cancelled" and cancelled["cancel_url"] is None
    assert cancelled["polling_url"] == f"http://a.test:8080/v1/videos/{vid}"


async def test_the_aliases_answer_as_the_routes_they_alias(app_client: tuple[Any, Clients, list[JobEvent]]) -> None:
    _, client, _ = app_client
    api = client()
    job = (await api.post("/v1/video/generations", json=JOB)).json()
    assert job["status"] == "queued"
    both = [await api.get(f"{prefix}/{job['id']}") for prefix in ("/v1/videos", "/v1/video/generations")]
    assert both[0].status_code == both[1].status_code == 200
    assert {k: v for k, v in both[0].json().items() if k != "poll_after_seconds"} == {
        k: v for k, v in both[1].json().items() if k != "poll_after_seconds"
    }
    assert (await api.get("/v1/video/generations", params={"limit": 1})).json()["data"][0]["id"] == job["id"]
    assert (await api.get("/v1/video/generations/models")).status_code == 200
    missing = await api.get("/v1/video/generations/vid_00000000000000000000000000")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    alias = routes.document()["paths"]["/v1/video/generations/{video_id}"]["get"]
    assert alias["operationId"] == "getVideoAlias" and alias["x-alias-of"] == "/v1/videos/{video_id}"


async def test_the_public_url_is_every_answers_base(tmp_path: Path) -> None:
    settings = load_settings(env={"VIDGATE_PUBLIC_URL": "https://videos.example"}, data_dir=tmp_path, admin_key=ADMIN)
    app = create_app(settings, run_worker=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:9") as c:
            r = await c.post("/v1/admin/keys", json={"name": "p"}, headers={"Authorization": f"Bearer {ADMIN}"})
            c.headers["Authorization"] = f"Bearer {r.json()['key']}"
            r = await c.post("/v1/videos", json=JOB, headers={"X-Forwarded-Host": "elsewhere.test"})
            job = r.json()
            assert r.headers["location"] == job["polling_url"] == f"https://videos.example/v1/videos/{job['id']}"
            polled = (await c.get(f"/v1/videos/{job['id']}")).json()
            assert polled["websocket_url"] == f"wss://videos.example/v1/async/video/{job['id']}/ws"
