"""``GET /v1/videos/{id}/request`` over real HTTP on SQLite and on PostgreSQL + S3: a job's create
body comes back with its defaults filled in, inputs by source, and nothing secret."""

from __future__ import annotations

import socket

import httpx
import pytest
from helpers.gateway import GatewayProcess, wait_status
from helpers.media import png_bytes, png_data_url

pytestmark = pytest.mark.both_backends

MODEL = "vidgate/procedural"
SECRET = "whsec-never-shown-0123456789"
CREDENTIAL = "sk-live-never-shown-9876543210"


def created(api: httpx.Client, body: dict) -> str:
    r = api.post("/v1/videos", json=body)
    assert r.status_code == 202, r.text
    return r.json()["id"]


def closed_port() -> int:
    """A loopback port nothing listens on: a delivery there fails at once, and never leaves the machine."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def settle(api: httpx.Client, *ids: str) -> None:
    """Let each job finish, so its hold is settled before the ledger is checked."""
    for video_id in ids:
        wait_status(api, video_id, {"completed", "failed", "cancelled", "expired"})


def test_settings_and_inputs_round_trip(gateway: GatewayProcess, api: httpx.Client) -> None:
    upload = api.post("/v1/files", files={"file": ("frame.png", png_bytes((200, 40, 40), 128, 72), "image/png")})
    assert upload.status_code == 201 or upload.status_code == 200, upload.text
    file_id = upload.json()["id"]
    inline = png_data_url((10, 120, 30), 32, 18)
    body = {
        "model": MODEL,
        "prompt": "a lighthouse at dusk",
        "duration": 2,
        "resolution": "360p",
        "aspect_ratio": "1:1",
        "seed": 42,
        "sample_count": 2,
        "negative_prompt": "fog",
        "generate_audio": True,
        "output": {"access": "signed_url"},
        "provider": {"order": ["vidgate"], "allow_fallbacks": False},
        "input_references": [
            {"type": "image", "role": "first_frame", "file_id": file_id},
            {"type": "image", "role": "reference", "url": inline},
        ],
    }
    video_id = created(api, body)
    r = api.get(f"/v1/videos/{video_id}/request")
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["object"] == "video.request" and got["id"] == video_id
    for name in (
        "model",
        "prompt",
        "duration",
        "resolution",
        "aspect_ratio",
        "seed",
        "sample_count",
        "negative_prompt",
    ):
        assert got[name] == body[name], name
    assert got["generate_audio"] is True and got["output_access"] == "signed_url"
    assert got["provider"] == {"include_alpha": False, "allow_fallbacks": False, "order": ["vidgate"]}
    assert got["size"] == "360x360"  # 360p at 1:1, as the job was priced and run
    assert "operation" not in got
    first, ref = got["input_references"]
    assert first == {"role": "first_frame", "kind": "image", "file_id": file_id}
    raw = inline.split(",", 1)[1]
    assert ref["role"] == "reference" and "url" not in ref
    assert ref["data"] == {"mime_type": "image/png", "bytes": len(png_bytes((10, 120, 30), 32, 18))}
    assert raw[:40] not in r.text  # the inline bytes are never echoed
    assert api.get(f"/v1/video/generations/{video_id}/request").json() == got  # the alias spelling
    settle(api, video_id)


def test_an_earlier_video_names_its_job(gateway: GatewayProcess, api: httpx.Client) -> None:
    first = created(api, {"model": MODEL, "prompt": "waves", "duration": 1, "size": "128x72"})
    assert wait_status(api, first, {"completed", "failed"})["status"] == "completed"
    body = {
        "model": MODEL,
        "prompt": "waves, later",
        "duration": 1,
        "size": "128x72",
        "operation": "extend",
        "input_references": [{"type": "video", "role": "source", "asset_id": first}],
    }
    second = created(api, body)
    got = api.get(f"/v1/videos/{second}/request").json()
    assert got["operation"] == "extend" and got["size"] == "128x72"
    assert got["input_references"] == [{"role": "source", "kind": "video", "asset_id": first, "job_id": first}]
    settle(api, second)


def test_no_secret_is_shown(gateway: GatewayProcess, api: httpx.Client) -> None:
    body = {
        "model": MODEL,
        "prompt": "a quiet street",
        "duration": 1,
        "size": "128x72",
        "webhook": {"url": f"http://127.0.0.1:{closed_port()}/hook?token=abc123", "secret": SECRET},
        "provider_params": {"api_key": CREDENTIAL, "style": "calm"},
        "provider_options": {"vidgate": {"token": CREDENTIAL}},
    }
    video_id = created(api, body)
    answer = api.get(f"/v1/videos/{video_id}/request")
    assert answer.status_code == 200, answer.text
    text = answer.text
    for secret in (SECRET, CREDENTIAL, "token=abc123", "calm"):
        assert secret not in text
    got = answer.json()
    assert "webhook" not in got
    assert got["provider_params_keys"] == ["api_key", "style"]
    assert got["provider_options_keys"] == {"vidgate": ["token"]}
    assert got["input_references"] == []
    api.post(f"/v1/videos/{video_id}/cancel")
    settle(api, video_id)


def test_another_owner_gets_404(gateway: GatewayProcess, api: httpx.Client) -> None:
    video_id = created(api, {"model": MODEL, "prompt": "mine", "duration": 1, "size": "128x72"})
    with gateway.client(gateway.new_key("other")) as other:
        for path in (f"/v1/videos/{video_id}/request", "/v1/videos/vid_doesnotexist/request"):
            r = other.get(path)
            assert r.status_code == 404, r.text
            err = r.json()["error"]
            assert err["code"] == "not_found" and err["param"] == "video_id"
            assert "mine" not in r.text
    with httpx.Client(base_url=gateway.base_url, timeout=30) as anonymous:
        assert anonymous.get(f"/v1/videos/{video_id}/request").status_code == 401
    settle(api, video_id)


def test_an_earlier_output_names_the_job_that_made_it(gateway: GatewayProcess, api: httpx.Client) -> None:
    first = created(api, {"model": MODEL, "prompt": "dunes", "duration": 1, "size": "128x72"})
    done = wait_status(api, first, {"completed", "failed"})
    assert done["status"] == "completed", done
    asset = done["outputs"][0]["asset"]["id"]
    assert asset.startswith("ast_")
    body = {
        "model": MODEL,
        "prompt": "dunes, later",
        "duration": 1,
        "size": "128x72",
        "operation": "extend",
        "input_references": [{"type": "video", "role": "source", "asset_id": asset}],
    }
    second = created(api, body)
    got = api.get(f"/v1/videos/{second}/request").json()
    assert got["input_references"] == [{"role": "source", "kind": "video", "asset_id": asset, "job_id": first}]
    settle(api, second)
    # Once the job that made it is deleted, so is its asset: the input no longer names a job.
    assert api.delete(f"/v1/videos/{first}").status_code == 200
    got = api.get(f"/v1/videos/{second}/request").json()
    assert got["input_references"] == [{"role": "source", "kind": "video", "asset_id": asset}]


def test_the_admin_key_reads_any_owners_request(gateway: GatewayProcess, api: httpx.Client) -> None:
    video_id = created(api, {"model": MODEL, "prompt": "theirs", "duration": 1, "size": "128x72"})
    mine = api.get(f"/v1/videos/{video_id}/request")
    assert mine.status_code == 200, mine.text
    with gateway.admin() as admin:
        r = admin.get(f"/v1/videos/{video_id}/request")
        assert r.status_code == 200, r.text
        assert r.json() == mine.json() and r.json()["prompt"] == "theirs"
        missing = admin.get("/v1/videos/vid_doesnotexist/request")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    with gateway.client(gateway.new_key("not-admin")) as other:
        assert other.get(f"/v1/videos/{video_id}/request").status_code == 404
    settle(api, video_id)
