"""One route table: what the app serves is what the OpenAPI document lists, and the poll has one answer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.types import Receive, Scope, Send

from vidgate.gateway.api import routes
from vidgate.gateway.app import create_app
from vidgate.gateway.events.bus import EventBus
from vidgate.gateway.settings import load_settings
from vidgate.types import JobEvent, Video

ADMIN = "vg_admin_routes_test_key"
JOB = {"model": "vidgate/procedural", "prompt": "a slow pan over hills", "duration": 1, "size": "160x90"}
# Served but left out of the document, each for the reason its table entry gives.
HIDDEN = {
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("POST", "/openai/v1/videos"),
    ("GET", "/openai/v1/videos"),
    ("GET", "/openai/v1/videos/{video_id}"),
    ("DELETE", "/openai/v1/videos/{video_id}"),
    ("GET", "/openai/v1/videos/{video_id}/content"),
    ("POST", "/openai/v1/videos/edits"),
    ("POST", "/openai/v1/videos/extensions"),
    ("POST", "/openai/v1/videos/{video_id}/remix"),
    ("GET", "/"),
    ("MOUNT", "/web"),
}


def served(app: Starlette) -> tuple[set[tuple[str, str]], set[str]]:
    """(method, path) of every HTTP route and mount, and the websocket paths."""
    http: set[tuple[str, str]] = set()
    sockets: set[str] = set()
    for route in app.routes:
        if isinstance(route, Route):
            http |= {(m, route.path) for m in route.methods or () if m != "HEAD"}
        elif isinstance(route, WebSocketRoute):
            sockets.add(route.path)
        elif isinstance(route, Mount):
            http.add(("MOUNT", route.path))
        else:
            raise AssertionError(f"a route of an unknown kind: {route!r}")
    return http, sockets


def test_every_route_is_in_the_document_and_every_documented_route_is_served(tmp_path: Path) -> None:
    app = create_app(load_settings(env={}, data_dir=tmp_path), run_worker=False)
    http, sockets = served(app)
    documented = {(m.upper(), p) for p, ops in routes.document()["paths"].items() for m in ops}
    assert documented - http == set(), sorted(documented - http)
    assert http - documented == HIDDEN, sorted((http - documented) ^ HIDDEN)
    # A websocket is documented by its path's GET: the upgrade, and 426 to plain HTTP.
    assert sockets == {"/v1/async/video/{video_id}/ws"} and all(("GET", p) in documented for p in sockets)


@pytest.fixture
async def clients(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    """A client of the whole app, and one of the same app without the poll's fast path in front."""
    app = create_app(load_settings(env={}, data_dir=tmp_path, admin_key=ADMIN), run_worker=False)
    plain = Starlette.build_middleware_stack(app)  # what the fast path wraps

    async def routed(scope: Scope, receive: Receive, send: Send) -> None:
        scope["app"] = app
        await plain(scope, receive, send)

    async with app.router.lifespan_context(app):
        base = "http://vidgate.test"
        async with (
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base) as fast,
            httpx.AsyncClient(transport=httpx.ASGITransport(app=routed), base_url=base) as slow,
        ):
            yield fast, slow


async def _key(client: httpx.AsyncClient) -> str:
    r = await client.post(
        "/v1/admin/keys", json={"name": "routes", "balance": 10}, headers={"Authorization": f"Bearer {ADMIN}"}
    )
    assert r.status_code == 201, r.text
    key: str = r.json()["key"]
    return key


def _answer(r: httpx.Response) -> tuple[int, list[tuple[str, str]], Any]:
    return r.status_code, sorted(r.headers.multi_items()), r.json()


async def test_the_fast_path_and_the_route_give_the_same_poll_answer(
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    fast, slow = clients
    mine, theirs = await _key(fast), await _key(fast)
    job = await fast.post("/v1/videos", json=JOB, headers={"Authorization": f"Bearer {mine}"})
    assert job.status_code == 202, job.text
    url = f"/v1/videos/{job.json()['id']}"
    cases = {
        "own job, queued": (url, mine, 200),
        "another owner's job": (url, theirs, 404),
        "no such job": ("/v1/videos/vid_00000000000000000000000000", mine, 404),
        "no key": (url, None, 401),
        "the admin key": (url, ADMIN, 403),
    }
    for name, (path, key, status) in cases.items():
        headers = {"X-Request-Id": f"probe-{status}"} | ({"Authorization": f"Bearer {key}"} if key else {})
        for _ in range(3):  # a poll hint computed either side of a second's edge may differ: ask again
            a, b = _answer(await fast.get(path, headers=headers)), _answer(await slow.get(path, headers=headers))
            if a == b:
                break
        assert a == b, name
        assert a[0] == status, (name, a)
        if status == 200:
            assert dict(a[1])["retry-after"] == str(a[2]["poll_after_seconds"])


class Recorder:
    def __init__(self) -> None:
        self.seen: list[str] = []

    def publish(self, event: JobEvent) -> None:
        self.seen.append(event.id)


class Broken:
    def publish(self, event: JobEvent) -> None:
        raise RuntimeError("this sink is down")


def test_every_sink_hears_every_event_even_when_one_fails() -> None:
    bus, first, last = EventBus(), Recorder(), Recorder()
    for sink in (first, Broken(), last):
        bus.add_sink(sink)
    video = Video(id="vid_sinks", status="queued", model="vidgate/procedural", created_at=1)  # type: ignore[arg-type]
    for n in range(2):
        bus.publish(JobEvent(id=f"evt_{n}", type="video.created", created_at=1, data=video))
    assert first.seen == last.seen == ["evt_0", "evt_1"]
