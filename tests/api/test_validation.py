"""Every bad create request is a 4xx in the one envelope, naming the param, and stores nothing."""

from __future__ import annotations

import httpx
import pytest
from helpers.gateway import GatewayProcess, wait_status

MODEL = "vidgate/procedural"
IMAGE = "https://example.com/a.png"
CLIP = "https://example.com/a.mp4"
# A model that takes a first_frame image and nothing else (the built-in takes every kind of input).
FIRST_FRAME_ONLY = "minimax/hailuo-2.3"


def envelope(r: httpx.Response, status: int, code: str, param: str | None = None) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    err = r.json()["error"]
    assert err["code"] == code, err
    assert err["request_id"] == r.headers["x-request-id"]
    assert err["message"]
    if param is not None:
        assert err["param"] == param, err
    return err


CASES = [
    ({"prompt": "x"}, 400, "validation_error", "model"),
    ({"model": MODEL}, 400, "validation_error", "prompt"),
    ({"model": MODEL, "prompt": "   "}, 400, "validation_error", "prompt"),
    ({"model": MODEL, "prompt": "x", "colour": "red"}, 400, "validation_error", "colour"),
    ({"model": MODEL, "prompt": "x", "size": "1280x720", "resolution": "720p"}, 400, "validation_error", "size"),
    ({"model": MODEL, "prompt": "x", "size": "1280x720", "aspect_ratio": "16:9"}, 400, "validation_error", "size"),
    ({"model": MODEL, "prompt": "x", "size": "big"}, 400, "validation_error", "size"),
    ({"model": MODEL, "prompt": "x", "size": "1281x720"}, 400, "validation_error", "size"),
    ({"model": MODEL, "prompt": "x", "size": "4096x4096"}, 400, "validation_error", "size"),
    ({"model": MODEL, "prompt": "x", "resolution": "720"}, 400, "validation_error", "resolution"),
    ({"model": MODEL, "prompt": "x", "resolution": "4K"}, 400, "validation_error", "resolution"),
    ({"model": MODEL, "prompt": "x", "aspect_ratio": "wide"}, 400, "validation_error", "aspect_ratio"),
    ({"model": MODEL, "prompt": "x", "aspect_ratio": "21:9"}, 400, "validation_error", "aspect_ratio"),
    ({"model": MODEL, "prompt": "x", "duration": 0}, 400, "validation_error", "duration"),
    ({"model": MODEL, "prompt": "x", "duration": 21}, 400, "validation_error", "duration"),
    ({"model": MODEL, "prompt": "x", "duration": "4"}, 400, "validation_error", "duration"),
    ({"model": MODEL, "prompt": "x", "sample_count": 0}, 400, "validation_error", "sample_count"),
    ({"model": MODEL, "prompt": "x", "sample_count": 5}, 400, "validation_error", "sample_count"),
    ({"model": MODEL, "prompt": "x", "seed": -1}, 400, "validation_error", "seed"),
    (
        {"model": MODEL, "prompt": "x", "provider_params": {"duration": 3}},
        400,
        "validation_error",
        "provider_params.duration",
    ),
    ({"model": MODEL, "prompt": "x", "enhance_prompt": True}, 400, "unsupported_parameter", "enhance_prompt"),
    (
        {
            "model": FIRST_FRAME_ONLY,
            "prompt": "x",
            "input_references": [
                {"type": "image_url", "role": "last_frame", "image_url": {"url": "https://example.com/a.png"}}
            ],
        },
        400,
        "unsupported_parameter",
        "input_references[0].role",
    ),
    (
        {
            "model": MODEL,
            "prompt": "x",
            "input_references": [
                {"type": "image_url", "role": "first_frame", "image_url": {"url": "ftp://example.com/a.png"}}
            ],
        },
        400,
        "validation_error",
        "input_references[0].image_url.url",
    ),
    ({"model": MODEL, "prompt": "x", "input_references": [{"type": "video_url"}]}, 400, "validation_error", None),
    (
        {
            "model": FIRST_FRAME_ONLY,
            "prompt": "x",
            "input_references": [{"type": "image", "url": IMAGE, "role": "last_frame"}],
        },
        400,
        "unsupported_parameter",
        "input_references[0].role",
    ),
    (
        {
            "model": FIRST_FRAME_ONLY,
            "prompt": "x",
            "input_references": [{"type": "video_url", "media_url": {"url": CLIP}, "role": "source"}],
        },
        400,
        "unsupported_parameter",
        "input_references[0].type",
    ),
    (
        {"model": MODEL, "prompt": "x", "input_references": [{"type": "image", "role": "first_frame"}]},
        400,
        "validation_error",
        "input_references[0]",
    ),
    (
        {
            "model": MODEL,
            "prompt": "x",
            "input_references": [{"type": "image", "asset_id": "ast_01NOSUCHASSET", "role": "first_frame"}],
        },
        400,
        "validation_error",
        "input_references[0].asset_id",
    ),
    (
        {
            "model": FIRST_FRAME_ONLY,
            "prompt": "x",
            "frame_images": [{"image_url": {"url": IMAGE}, "frame_type": "last_frame"}],
        },
        400,
        "unsupported_parameter",
        "frame_images[0].frame_type",
    ),
    (
        {"model": MODEL, "prompt": "x", "duration": 4, "duration_seconds": 5},
        400,
        "validation_error",
        "duration_seconds",
    ),
    ({"model": MODEL, "prompt": "x", "duration_seconds": 99}, 400, "validation_error", "duration_seconds"),
    (
        {"model": MODEL, "prompt": "x", "provider_options": {"nobody": {}}},
        400,
        "validation_error",
        "provider_options.nobody",
    ),
    ({"model": MODEL, "prompt": "x", "input_video_duration": -1}, 400, "validation_error", "input_video_duration"),
    ({"model": MODEL, "prompt": "x", "output": {"access": "everything"}}, 400, "validation_error", "output.access"),
    (
        {"model": MODEL, "prompt": "x", "webhook": {"url": "https://example.com/h", "secret": ""}},
        400,
        "validation_error",
        "webhook.secret",
    ),
    (
        {"model": MODEL, "prompt": "x", "webhook": {"url": "https://example.com/h", "secret": "short"}},
        400,
        "validation_error",
        "webhook.secret",
    ),
    ({"model": MODEL, "prompt": "x", "provider": {"only": ["nobody"]}}, 400, "validation_error", "provider.only[0]"),
    ({"model": "acme/nothing", "prompt": "x"}, 400, "model_not_found", "model"),
]


@pytest.mark.parametrize(("body", "status", "code", "param"), CASES)
def test_bad_create_is_rejected_with_param(
    api: httpx.Client, body: dict, status: int, code: str, param: str | None
) -> None:
    envelope(api.post("/v1/videos", json=body), status, code, param)


def test_messages_list_what_is_supported(api: httpx.Client) -> None:
    err = envelope(
        api.post("/v1/videos", json={"model": MODEL, "prompt": "x", "aspect_ratio": "21:9"}),
        400,
        "validation_error",
        "aspect_ratio",
    )
    assert "16:9" in err["message"] and "9:16" in err["message"]
    err = envelope(
        api.post("/v1/videos", json={"model": MODEL, "prompt": "x", "duration": 30}),
        400,
        "validation_error",
        "duration",
    )
    assert "1 to 20" in err["message"]


def test_malformed_json_wrong_type_and_huge_body(api: httpx.Client) -> None:
    r = api.post("/v1/videos", content=b'{"model": "x", ', headers={"content-type": "application/json"})
    assert "not valid JSON" in envelope(r, 400, "validation_error")["message"]
    envelope(
        api.post("/v1/videos", content=b"[1,2]", headers={"content-type": "application/json"}), 400, "validation_error"
    )
    envelope(
        api.post("/v1/videos", content=b"model=x", headers={"content-type": "text/plain"}),
        415,
        "unsupported_media_type",
    )
    envelope(api.post("/v1/videos", content=b"", headers={"content-type": "application/json"}), 400, "validation_error")
    huge = b'{"model":"vidgate/procedural","prompt":"' + b"a" * (1 << 20) + b'"}'
    envelope(
        api.post("/v1/videos", content=huge, headers={"content-type": "application/json"}), 413, "payload_too_large"
    )


def test_nothing_is_stored_for_rejected_requests(gateway: GatewayProcess) -> None:
    with gateway.client(gateway.new_key()) as c:
        for body, *_ in CASES:
            c.post("/v1/videos", json=body)
        page = c.get("/v1/videos").json()
        assert page["data"] == [] and page["has_more"] is False


def test_auth_errors(gateway: GatewayProcess) -> None:
    r = httpx.get(gateway.base_url + "/v1/videos")
    envelope(r, 401, "unauthorized")
    r = httpx.get(gateway.base_url + "/v1/videos", headers={"Authorization": "Bearer vg_not_a_key"})
    envelope(r, 401, "unauthorized")
    r = httpx.get(gateway.base_url + "/v1/videos", headers={"Authorization": "Basic abc"})
    envelope(r, 401, "unauthorized")
    with gateway.client("admin-test-key") as admin_as_user:
        envelope(admin_as_user.get("/v1/videos"), 403, "forbidden")
    with gateway.client("vg_nope") as c:
        envelope(c.post("/v1/admin/keys", json={"name": "x"}), 401, "unauthorized")


def test_query_param_errors(api: httpx.Client) -> None:
    envelope(api.get("/v1/videos", params={"limit": 0}), 400, "validation_error", "limit")
    envelope(api.get("/v1/videos", params={"limit": 101}), 400, "validation_error", "limit")
    envelope(api.get("/v1/videos", params={"limit": "ten"}), 400, "validation_error", "limit")
    envelope(api.get("/v1/videos", params={"status": "sleeping"}), 400, "validation_error", "status")
    envelope(api.get("/v1/videos", params={"order": "sideways"}), 400, "validation_error", "order")


def test_unknown_routes_and_methods_use_the_envelope(gateway: GatewayProcess, api: httpx.Client) -> None:
    envelope(api.get("/v2/whatever"), 404, "not_found")
    envelope(api.put("/v1/videos"), 405, "method_not_allowed")
    r = api.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"} and r.headers["x-request-id"]
    r = api.get("/healthz", headers={"X-Request-Id": "client-chosen-1"})
    assert r.headers["x-request-id"] == "client-chosen-1"


def test_an_asset_is_its_owners_alone(gateway: GatewayProcess, api: httpx.Client) -> None:
    job = api.post("/v1/videos", json={"model": MODEL, "prompt": "a lighthouse", "duration": 1, "size": "128x72"})
    done = wait_status(api, job.json()["id"], {"completed", "failed"})
    assert done["status"] == "completed", done
    ref = {"type": "image", "asset_id": done["asset"]["id"], "role": "first_frame"}
    body = {"model": MODEL, "prompt": "x", "input_references": [ref]}
    mine = envelope(api.post("/v1/videos", json=body), 400, "validation_error", "input_references[0].asset_id")
    assert "is a video, not an image" in mine["message"]  # found: the owner's own asset
    with gateway.client(gateway.new_key()) as other:
        theirs = envelope(other.post("/v1/videos", json=body), 400, "validation_error", "input_references[0].asset_id")
    unknown = {**ref, "asset_id": "ast_01NOSUCHASSET"}
    nobody = envelope(api.post("/v1/videos", json={**body, "input_references": [unknown]}), 400, "validation_error")
    assert theirs["message"].replace(ref["asset_id"], "?") == nobody["message"].replace("ast_01NOSUCHASSET", "?")
