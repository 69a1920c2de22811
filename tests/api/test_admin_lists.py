"""The admin listings across keys (accounts, ledger, jobs) and a key's own limits, over real HTTP."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from helpers.gateway import GatewayProcess, wait_status

pytestmark = pytest.mark.both_backends

MODEL = "vidgate/procedural"
SMALL = {"model": MODEL, "prompt": "listed", "duration": 1, "size": "64x64"}
LONG = {"model": MODEL, "prompt": "a long one", "duration": 20, "size": "1920x1080"}


def walk(admin: httpx.Client, path: str, **params: Any) -> list[list[dict[str, Any]]]:
    """Every page of a keyset listing, following ``last_id`` while ``has_more``."""
    pages: list[list[dict[str, Any]]] = []
    after: str | None = None
    while True:
        r = admin.get(path, params={**params, **({"after": after} if after else {})})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["object"] == "list"
        pages.append(body["data"])
        if not body["has_more"]:
            return pages
        after = body["last_id"]
        assert after == body["data"][-1]["id"]


def test_only_the_admin_key_lists(gateway: GatewayProcess) -> None:
    key = gateway.new_key("not-admin")
    with gateway.client(key) as api, httpx.Client(base_url=gateway.base_url) as anon:
        for path in ("/v1/admin/accounts", "/v1/admin/ledger", "/v1/admin/jobs"):
            r = api.get(path)
            assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden", r.text
            assert anon.get(path).status_code == 401
    with gateway.admin() as admin:
        for path, params, param in [
            ("/v1/admin/ledger", {"kind": "gift"}, "kind"),
            ("/v1/admin/ledger", {"limit": "0"}, "limit"),
            ("/v1/admin/jobs", {"status": "done"}, "status"),
            ("/v1/admin/jobs", {"limit": "501"}, "limit"),
        ]:
            r = admin.get(path, params=params)
            assert r.status_code == 400 and r.json()["error"]["param"] == param, r.text


def test_key_accounts_show_funds_limits_and_live_jobs(gateway: GatewayProcess) -> None:
    rich, poor = gateway.new_key("rich", balance=5.0), gateway.new_key("poor", balance=0.25)
    rich_id, poor_id = gateway.key_id(rich), gateway.key_id(poor)
    with gateway.admin() as admin:
        r = admin.patch(f"/v1/admin/keys/{rich_id}/limits", json={"daily_limit": 2.5, "max_concurrent_jobs": 4})
        assert r.status_code == 200, r.text
        assert admin.delete(f"/v1/admin/keys/{poor_id}").status_code == 200
        with gateway.client(rich) as api:
            running = api.post("/v1/videos", json=LONG).json()
            try:
                accounts = {a["id"]: a for a in admin.get("/v1/admin/accounts").json()["data"]}
            finally:
                api.post(f"/v1/videos/{running['id']}/cancel")
    a, b = accounts[rich_id], accounts[poor_id]
    assert a["object"] == "key_account" and a["name"] == "rich" and rich.startswith(a["prefix"])
    assert a["balance"] == 5.0 and a["held"] == pytest.approx(running["billing"]["held"])
    assert a["available"] == pytest.approx(5.0 - a["held"]) and a["live_jobs"] == 1
    assert a["limits"] == {
        "daily_limit": 2.5,
        "monthly_limit": None,
        "rate_per_second": None,
        "rate_burst": None,
        "max_concurrent_jobs": 4,
    }
    assert a["revoked_at"] is None and isinstance(b["revoked_at"], int) and b["balance"] == 0.25
    assert all("key" not in item for item in accounts.values())  # never a secret
    ids = list(accounts)
    assert ids == sorted(ids, reverse=True)  # newest key first


def test_ledger_pages_by_key_and_kind(gateway: GatewayProcess) -> None:
    key = gateway.new_key("ledger-pages", balance=1.0)
    kid = gateway.key_id(key)
    with gateway.admin() as admin:
        for n in range(1, 5):
            assert admin.post(f"/v1/admin/keys/{kid}/topup", json={"amount": n, "memo": f"top {n}"}).status_code == 200
        with gateway.client(key) as api:
            job = api.post("/v1/videos", json=SMALL).json()
            wait_status(api, job["id"], {"completed"})
        everything = admin.get(f"/v1/admin/keys/{kid}/ledger", params={"limit": 1000}).json()["entries"]
        pages = walk(admin, "/v1/admin/ledger", key_id=kid, limit=3)
        topups = walk(admin, "/v1/admin/ledger", key_id=kid, kind="topup", limit=2)
        across = admin.get("/v1/admin/ledger", params={"limit": 500}).json()["data"]
    # initial balance + 4 top-ups, then hold, release and charge of the job: 8, in pages of 3.
    assert [len(p) for p in pages] == [3, 3, 2]
    flat = [e for p in pages for e in p]
    assert [e["id"] for e in flat] == [e["id"] for e in everything]
    assert {e["kind"] for e in flat} == {"topup", "hold", "release", "charge"}
    assert all(e["key_id"] == kid for e in flat)
    charge = next(e for e in flat if e["kind"] == "charge")
    assert charge["job_id"] == job["id"] and charge["model"] == MODEL and charge["amount"] == -0.001
    assert [e["memo"] for p in topups for e in p] == ["top 4", "top 3", "top 2", "top 1", "initial balance"]
    assert [len(p) for p in topups] == [2, 2, 1]
    mine = [e["id"] for e in across if e["key_id"] == kid]
    assert mine == [e["id"] for e in flat]  # every key's entries, this key's among them in order


def test_job_log_across_keys_with_filters_and_pages(gateway: GatewayProcess) -> None:
    one, two = gateway.new_key("log-one"), gateway.new_key("log-two")
    one_id, two_id = gateway.key_id(one), gateway.key_id(two)
    with gateway.client(one) as a, gateway.client(two) as b:
        done = [a.post("/v1/videos", json={**SMALL, "seed": n}).json()["id"] for n in range(3)]
        theirs = b.post("/v1/videos", json=SMALL).json()["id"]
        for video_id in done:
            wait_status(a, video_id, {"completed"})
        wait_status(b, theirs, {"completed"})
        cancelled = a.post("/v1/videos", json=LONG).json()["id"]
        assert a.post(f"/v1/videos/{cancelled}/cancel").status_code == 200
        completed = a.get(f"/v1/videos/{done[0]}").json()
    with gateway.admin() as admin:
        pages = walk(admin, "/v1/admin/jobs", key_id=one_id, limit=2)
        only_done = walk(admin, "/v1/admin/jobs", key_id=one_id, status="completed", limit=10)
        cancelled_alias = admin.get("/v1/admin/jobs", params={"key_id": one_id, "status": "canceled"}).json()
        by_provider = admin.get("/v1/admin/jobs", params={"key_id": two_id, "provider": "vidgate", "model": MODEL})
        none_elsewhere = admin.get("/v1/admin/jobs", params={"key_id": two_id, "provider": "runway"}).json()
        across = admin.get("/v1/admin/jobs", params={"limit": 500}).json()["data"]
    assert [len(p) for p in pages] == [2, 2]
    flat = [j for p in pages for j in p]
    assert [j["id"] for j in flat] == [cancelled, *reversed(done)]
    assert [j["id"] for p in only_done for j in p] == list(reversed(done))
    assert [j["id"] for j in cancelled_alias["data"]] == [cancelled]
    first = next(j for j in flat if j["id"] == done[0])
    assert first == {
        "id": done[0],
        "key_id": one_id,
        "model": MODEL,
        "provider": "vidgate",
        "status": "completed",
        "billing_state": "settled",
        "cost": completed["usage"]["cost"],
        "created_at": completed["created_at"],
        "completed_at": completed["completed_at"],
        "error_code": None,
        "error_message": None,
        "is_byok": False,
    }
    gone = next(j for j in flat if j["id"] == cancelled)
    assert gone["status"] == "cancelled" and gone["billing_state"] == "void" and gone["cost"] == 0
    assert [j["id"] for j in by_provider.json()["data"]] == [theirs]
    assert none_elsewhere["data"] == [] and none_elsewhere["has_more"] is False
    assert {j["key_id"] for j in across} >= {one_id, two_id}
    assert [j["id"] for j in across] == sorted((j["id"] for j in across), reverse=True)


def test_a_key_reads_its_own_limits_and_use(gateway: GatewayProcess) -> None:
    key = gateway.new_key("limits", balance=10.0)
    kid = gateway.key_id(key)
    with gateway.client(key) as api:
        free = api.get("/v1/usage/limits").json()
        assert free["object"] == "usage.limits" and free["currency"] == "USD"
        assert free["daily"]["limit"] is None and free["daily"]["remaining"] is None
        assert free["monthly"]["limit"] is None and free["live_jobs"] == 0
        with gateway.admin() as admin:
            r = admin.patch(
                f"/v1/admin/keys/{kid}/limits",
                json={
                    "daily_limit": 0.5,
                    "monthly_limit": 2,
                    "rate_per_second": 50,
                    "rate_burst": 80,
                    "max_concurrent_jobs": 3,
                },
            )
            assert r.status_code == 200, r.text
        done = api.post("/v1/videos", json={**SMALL, "duration": 3}).json()
        cost = wait_status(api, done["id"], {"completed"})["usage"]["cost"]
        running = api.post("/v1/videos", json=LONG).json()
        try:
            now = api.get("/v1/usage/limits").json()
        finally:
            api.post(f"/v1/videos/{running['id']}/cancel")
    held = running["billing"]["held"]
    assert (now["rate_per_second"], now["rate_burst"], now["max_concurrent_jobs"]) == (50, 80, 3)
    assert now["live_jobs"] == 1
    assert now["daily"]["limit"] == 0.5 and now["monthly"]["limit"] == 2
    for window, limit in ((now["daily"], 0.5), (now["monthly"], 2)):
        assert window["spent"] == pytest.approx(cost) and window["held"] == pytest.approx(held)
        assert window["remaining"] == pytest.approx(limit - cost - held)
    assert now["daily"]["resets_at"] <= now["monthly"]["resets_at"]
    with gateway.admin() as admin:
        r = admin.get("/v1/usage/limits")
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
