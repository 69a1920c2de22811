"""Schemathesis against ``/openapi.json`` of the running gateway: every operation, both backends.

What must hold for every generated request: no 5xx; every error (4xx) is the one envelope with the
response's ``X-Request-Id``; every response matches its documented status, content type, headers
and schema; invalid data is rejected. Half of the valid cases are pointed at real objects (finished
jobs, a webhook delivery, a signed link, a throwaway key) so the success paths are checked too,
not only the 404s a random id gets. ``VIDGATE_SCHEMATHESIS_EXAMPLES`` sets examples per operation.
"""

from __future__ import annotations

import os
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import orjson
import pytest
import schemathesis
from fakes.server import FakeUpstream
from helpers.gateway import ADMIN_KEY, GatewayProcess, wait_status
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from vidgate.gateway.api import routes

pytestmark = pytest.mark.both_backends

EXAMPLES = int(os.environ.get("VIDGATE_SCHEMATHESIS_EXAMPLES", "30"))
CHECKS = [
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
JOB = {"model": "vidgate/procedural", "prompt": "schemathesis", "duration": 1, "size": "128x72"}


@dataclass(repr=False)
class Real:
    """Objects that exist, owned by ``key``, for valid cases to point at."""

    key: str
    finished: list[str]
    disposable: list[str]
    deliveries: dict[str, str]
    signed: dict[str, str]
    key_ids: list[str]
    rng: random.Random = field(default_factory=lambda: random.Random(7))


@dataclass(repr=False)
class Tally:
    requests: int = 0
    by_status: Counter[int] = field(default_factory=Counter)
    by_operation: Counter[str] = field(default_factory=Counter)
    envelopes: int = 0
    no_provider: int = 0
    pointed_at_real: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def webhook_receiver() -> FakeUpstream:
    async def hook(request: Request) -> Response:
        await request.body()
        return Response(status_code=204)

    return FakeUpstream(Starlette(routes=[Route("/hook", hook, methods=["POST"])])).start()


@pytest.fixture(scope="module")
def real(gateway: GatewayProcess) -> Iterator[Real]:
    receiver = webhook_receiver()
    key = gateway.new_key("schemathesis", balance=100.0)
    hook = {"url": f"{receiver.base_url}/hook", "secret": "whsec_" + "c2NoZW1hdGhlc2lzLXNlY3JldC1rZXktMzItYnl0ZXM="}
    with gateway.client(key) as api:
        ids = []
        for n in range(4):
            r = api.post("/v1/videos", json={**JOB, "seed": n, "webhook": hook})
            assert r.status_code == 202, r.text
            ids.append(r.json()["id"])
        for video_id in ids:
            assert wait_status(api, video_id, {"completed"}, timeout=60)["status"] == "completed"
        deliveries: dict[str, str] = {}
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(deliveries) < len(ids):
            for video_id in ids:
                data = api.get(f"/v1/videos/{video_id}/webhook_deliveries").json()["data"]
                if data:
                    deliveries[video_id] = data[0]["id"]
            time.sleep(0.2)
        signed = {}
        for video_id in ids:
            link = api.post(f"/v1/videos/{video_id}/download_url", json={"ttl_seconds": 3600}).json()["url"]
            signed[video_id] = link
    with gateway.admin() as admin:
        key_ids = [admin.post("/v1/admin/keys", json={"name": f"throwaway-{i}"}).json()["id"] for i in range(3)]
    yield Real(key, ids[:2], ids[2:], deliveries, signed, key_ids)
    receiver.stop()


@pytest.fixture(scope="module")
def tallies() -> Iterator[dict[str, Tally]]:
    out: dict[str, Tally] = {}
    yield out
    for backend, t in out.items():
        statuses = ", ".join(f"{code}: {n}" for code, n in sorted(t.by_status.items()))
        documented = sum(1 for op in t.by_operation if op in DOCUMENTED)
        print(
            f"\nschemathesis [{backend}]: {t.requests} requests over {documented} documented operations "
            f"and {len(t.by_operation) - documented} undocumented methods "
            f"({t.pointed_at_real} aimed at real objects); statuses {statuses}; "
            f"5xx other than a documented 503 no_provider_available ({t.no_provider}): "
            f"{sum(n for c, n in t.by_status.items() if c >= 500) - t.no_provider}; "
            f"error envelopes checked: {t.envelopes}"
        )


# The document is a pure function of the code, so the tests are generated at collection time;
# test_served_document_is_this_one checks the running gateway serves exactly this document.
schema = schemathesis.openapi.from_dict(routes.document())
DOCUMENTED = {f"{m.upper()} {p}" for p, ops in routes.document()["paths"].items() for m in ops}
# Unknown query parameters are ignored by design, and the key is set by the test, not generated.
schema.config.generation.update(allow_extra_parameters=False, with_security_parameters=False)


def no_server_error(ctx: Any, response: Any, case: Any) -> bool | None:
    """No 5xx, except the documented 503 for a create no provider can run (``provider.only: []``, say)."""
    if response.status_code >= 500:
        body = orjson.loads(response.content) if response.content else {}
        code = body.get("error", {}).get("code") if isinstance(body, dict) else None
        assert response.status_code == 503 and code == "no_provider_available", (response.status_code, body)
    return None


def error_envelope(ctx: Any, response: Any, case: Any) -> bool | None:
    """Every 4xx/5xx answer is ``{"error": {type, code, message, param, request_id}}`` naming its request."""
    if response.status_code < 400:
        return None
    assert response.headers.get("content-type", [""])[0].startswith("application/json"), response.headers
    body = orjson.loads(response.content)
    assert set(body) == {"error"}, body
    err = body["error"]
    assert isinstance(err["type"], str) and isinstance(err["code"], str) and isinstance(err["message"], str), err
    assert "param" in err and err["request_id"] == response.headers["x-request-id"][0], (err, response.headers)
    if response.status_code == 429:
        assert "retry-after" in response.headers
    return None


def _positive(case: Any) -> bool:
    meta = case.meta
    return meta is not None and all(not c.mode.is_negative for c in meta.components.values())


def aim(case: Any, real: Real) -> bool:
    """Point a valid case at real objects half of the time; True when it did."""
    params = case.path_parameters or {}
    if not params or not _positive(case) or real.rng.random() < 0.5:
        return False
    if "key_id" in params:
        params["key_id"] = real.rng.choice(real.key_ids)
        return True
    if "video_id" not in params:
        return False
    pool = real.disposable if case.method.upper() == "DELETE" else real.finished
    if not pool:
        return False
    video_id = real.rng.choice(pool)
    params["video_id"] = video_id
    if "delivery_id" in params and video_id in real.deliveries:
        params["delivery_id"] = real.deliveries[video_id]
    if case.path.endswith("/download") and video_id in real.signed:
        link = urlsplit(real.signed[video_id])
        if link.path.endswith("/download"):  # a local signed link; an S3 store's presigned URL goes elsewhere
            case.query = {**(case.query or {}), **dict(parse_qsl(link.query))}
    return True


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_conforms(
    case: Any, gateway: GatewayProcess, backend: str, real: Real, tallies: dict[str, Tally]
) -> None:
    tally = tallies.setdefault(backend, Tally())
    aimed = aim(case, real)
    key = ADMIN_KEY if case.path.startswith("/v1/admin") else real.key
    headers = {"Authorization": f"Bearer {key}"}
    if case.path in ("/healthz", "/readyz") or case.path.endswith(("/download", "/ws")):
        headers = {}
    response = case.call(base_url=gateway.base_url, headers=headers, timeout=30)
    with tally.lock:
        tally.requests += 1
        tally.by_status[response.status_code] += 1
        tally.by_operation[f"{case.method} {case.path}"] += 1
        tally.pointed_at_real += aimed
        tally.envelopes += response.status_code >= 400
        tally.no_provider += response.status_code == 503
    case.validate_response(
        response,
        checks=CHECKS,
        additional_checks=[no_server_error, error_envelope],
        headers=headers,
        transport_kwargs={"base_url": gateway.base_url, "headers": headers},
    )


def test_served_document_is_this_one(gateway: GatewayProcess) -> None:
    assert httpx.get(gateway.base_url + "/openapi.json").json() == orjson.loads(orjson.dumps(routes.document()))


def test_document_covers_every_route(gateway: GatewayProcess) -> None:
    """Every route the app serves under /v1 is in the document, with its methods."""
    from vidgate.gateway.app import create_app
    from vidgate.gateway.settings import Settings

    doc = httpx.get(gateway.base_url + "/openapi.json").json()
    served = set()
    for route in create_app(Settings()).routes:
        path = getattr(route, "path", "")
        for method in getattr(route, "methods", None) or ():
            if path.startswith("/v1/") and method != "HEAD":
                served.add((method.lower(), re.sub(r"{(\w+):\w+}", r"{\1}", path)))
    documented = {(m, p) for p, ops in doc["paths"].items() for m in ops}
    assert served - documented == set(), sorted(served - documented)
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            for code, response in op["responses"].items():
                if code >= "400":
                    assert response == {"$ref": f"#/components/responses/E{code}"}, (method, path, code)
    print(f"\nopenapi: {len(documented)} operations documented, {len(served)} served under /v1, none missing")


def test_nul_characters_are_refused_not_stored(gateway: GatewayProcess, real: Real) -> None:
    """PostgreSQL text cannot hold NUL: once a 500, and a webhook URL with one stalled its job for good."""
    secret = "whsec_" + "c2NoZW1hdGhlc2lzLXNlY3JldC1rZXktMzItYnl0ZXM="
    with gateway.client(real.key) as api, gateway.admin() as admin:
        answers = [
            api.get("/v1/videos/%00"),
            api.get("/v1/videos", params={"after": "\x00"}),
            api.post(f"/v1/videos/{real.finished[0]}/webhook_deliveries/%00/redeliver"),
            api.post("/v1/videos", json={**JOB, "prompt": "a\x00b"}),
            api.post("/v1/videos", json={**JOB, "webhook": {"url": "https://example.invalid/\x00", "secret": secret}}),
            admin.post("/v1/admin/keys", json={"name": "nul\x00"}),
            admin.get("/v1/admin/keys/%00/ledger"),
        ]
    for r in answers:
        assert r.status_code == 400 and r.json()["error"]["code"] == "validation_error", (r.request.url, r.text)
