"""The request view's pure parts: a reference by its source, and a ``data:`` URL by its type and size."""

from __future__ import annotations

import base64

import msgspec

from vidgate.gateway.jobs.request_view import asset_inputs, inline_data, request_reference, video_request
from vidgate.gateway.jobs.spec import Reference, VideoSpec, Webhook
from vidgate.gateway.secret import Secret


def shown(ref: Reference) -> object:
    return msgspec.to_builtins(request_reference(ref))


def test_inline_data_is_its_type_and_decoded_size() -> None:
    url = "data:image/webp;base64," + base64.b64encode(bytes(range(200))).decode()
    assert msgspec.to_builtins(inline_data(url)) == {"mime_type": "image/webp", "bytes": 200}
    assert msgspec.to_builtins(inline_data("data:,hello%20there")) == {"mime_type": "text/plain", "bytes": 11}


def test_each_source_is_named_once() -> None:
    url = "https://a.test/x.png"
    assert shown(Reference(role="first_frame", url=url)) == {"role": "first_frame", "kind": "image", "url": url}
    assert shown(Reference(role="reference", url="", file="file_1")) == {
        "role": "reference",
        "kind": "image",
        "file_id": "file_1",
    }
    assert shown(Reference(role="source", url="", kind="video", asset="ast_9")) == {
        "role": "source",
        "kind": "video",
        "asset_id": "ast_9",
    }
    assert shown(Reference(role="reference", url="data:image/png;base64,AAAA")) == {
        "role": "reference",
        "kind": "image",
        "data": {"mime_type": "image/png", "bytes": 3},
    }


def test_an_asset_names_the_job_that_made_it_where_known() -> None:
    refs = (
        Reference(role="source", url="", kind="video", asset="ast_1"),
        Reference(role="reference", url="", asset="ast_2"),
        Reference(role="reference", url="", asset="ast_1"),
        Reference(role="first_frame", url="", asset="vid_7"),
        Reference(role="last_frame", url="", file="file_3"),
    )
    spec = VideoSpec(model="m", prompt="p", duration=1, width=64, height=64, references=refs)
    assert asset_inputs(spec) == ["ast_1", "ast_2"]  # a job's own id names its job already
    got = msgspec.to_builtins(video_request("vid_9", spec, {"ast_1": "vid_5"}).input_references)
    assert [r.get("job_id") for r in got] == ["vid_5", None, "vid_5", "vid_7", None]
    assert [r.get("asset_id") for r in got] == ["ast_1", "ast_2", "ast_1", "vid_7", None]


def test_a_webhook_secret_and_param_values_are_never_in_the_view() -> None:
    spec = VideoSpec(
        model="m",
        prompt="p",
        duration=1,
        width=64,
        height=64,
        webhook=Webhook(url="https://h.test/?t=1", secret=Secret("clear-secret")),
        provider_params={"key": "credential"},
        provider_options={"fal": {"token": "credential-2"}},
    )
    text = msgspec.json.encode(video_request("vid_1", spec)).decode()
    assert "clear-secret" not in text and "credential" not in text and "h.test" not in text
    got = msgspec.json.decode(text)
    assert got["provider_params_keys"] == ["key"] and got["provider_options_keys"] == {"fal": ["token"]}
