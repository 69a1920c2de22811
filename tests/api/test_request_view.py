"""The request view's pure parts: a reference by its source, and a ``data:`` URL by its type and size."""

from __future__ import annotations

import base64

import msgspec

from vidgate.gateway.jobs.request_view import inline_data, request_reference, video_request
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
