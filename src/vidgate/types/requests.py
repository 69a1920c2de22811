"""The body of ``POST /v1/videos`` and the parts it is made of."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from vidgate.types.base import FrameType, Operation, OutputAccess, ReferenceType, Role, _Request


class ImageURL(_Request):
    url: str


class MediaURL(_Request):
    url: str


class InputReference(_Request):
    """One input medium, in any of the three shapes the reference's clients send:
    ``{type: image_url, image_url: {url}}``, ``{type: video_url | audio_url, media_url: {url}}``, or
    ``{type: image | video | audio | mask, url | data (+ mime_type) | asset_id | file_id}``. ``role``
    defaults to ``mask`` for a mask and ``reference`` otherwise. ``asset_id`` may also name an upload
    (``file_…``): both name bytes the gateway already holds for the caller."""

    type: Annotated[ReferenceType, Meta(description="The shape and the kind of medium")]
    image_url: ImageURL | UnsetType = UNSET
    role: Role | UnsetType = UNSET
    reference_type: str | UnsetType = UNSET
    media_url: MediaURL | UnsetType = UNSET
    url: Annotated[str, Meta(description="An https:// URL (or a data: URL)")] | UnsetType = UNSET
    data: Annotated[str, Meta(description="The bytes in base64 (with mime_type), or a data: URL")] | UnsetType = UNSET
    mime_type: str | UnsetType = UNSET
    asset_id: (
        Annotated[
            str,
            Meta(
                description="An output of one of your own completed jobs (ast_…), or such a job's id (vid_…) "
                "for its first output, or one of your uploads (file_…)"
            ),
        ]
        | UnsetType
    ) = UNSET
    file_id: Annotated[str, Meta(description="One of your own uploads (POST /v1/files)")] | UnsetType = UNSET


class FrameImage(_Request):
    """An image that is the first or last frame of the video (the OpenRouter spelling of a
    ``first_frame`` / ``last_frame`` input reference)."""

    image_url: ImageURL | str
    frame_type: FrameType
    type: Literal["image_url"] = "image_url"


class DebugOptions(msgspec.Struct, omit_defaults=True):
    """The reference's debug switches: accepted and ignored (vidgate keeps its own attempt log)."""

    enabled: bool | UnsetType = UNSET
    return_upstream_request: bool | UnsetType = UNSET
    return_upstream_response: bool | UnsetType = UNSET
    trace: bool | UnsetType = UNSET
    trace_level: Literal["summary", "full"] | UnsetType = UNSET


class OutputConfig(_Request):
    access: OutputAccess = "both"


class WebhookConfig(_Request):
    """Where a job's events go: ``url`` (with an optional ``secret``), or a registered endpoint's ``endpoint_id``."""

    url: str | UnsetType = UNSET
    secret: (
        Annotated[
            str,
            Meta(
                description="Signs every delivery (Standard Webhooks and x-phaseo-* headers); 8 to 256 printable "
                "characters, kept sealed at rest. Without it deliveries go unsigned (no signature headers) and "
                "the job's webhook shows has_secret false"
            ),
        ]
        | UnsetType
    ) = UNSET
    events: list[str] | UnsetType = UNSET
    endpoint_id: str | UnsetType = UNSET
    endpointId: Annotated[str, Meta(description="Another name for endpoint_id")] | UnsetType = UNSET


class ProviderRouting(_Request):
    order: list[str] | UnsetType = UNSET
    only: list[str] | UnsetType = UNSET
    ignore: list[str] | UnsetType = UNSET
    include_alpha: bool = False
    allow_fallbacks: bool = True


class VideoGenerationRequest(_Request):
    """The body of ``POST /v1/videos``."""

    model: str
    prompt: str
    duration: int | UnsetType = UNSET
    size: str | UnsetType = UNSET
    resolution: str | UnsetType = UNSET
    aspect_ratio: str | UnsetType = UNSET
    seed: int | UnsetType = UNSET
    sample_count: int | UnsetType = UNSET
    negative_prompt: str | UnsetType = UNSET
    generate_audio: bool | UnsetType = UNSET
    enhance_prompt: bool | UnsetType = UNSET
    compression_quality: int | UnsetType = UNSET
    person_generation: str | UnsetType = UNSET
    resize_mode: str | UnsetType = UNSET
    input_references: list[InputReference] | UnsetType = UNSET
    provider_params: dict[str, Any] | UnsetType = UNSET
    output: OutputConfig | UnsetType = UNSET
    webhook: WebhookConfig | UnsetType = UNSET
    provider: ProviderRouting | UnsetType = UNSET
    duration_seconds: Annotated[int, Meta(description="Another name for duration")] | UnsetType = UNSET
    frame_images: (
        Annotated[list[FrameImage], Meta(description="First and last frame images (input_references by role)")]
        | UnsetType
    ) = UNSET
    provider_options: (
        Annotated[
            dict[str, dict[str, Any]],
            Meta(description="Per provider (by name): fields sent only to that provider, over provider_params"),
        ]
        | UnsetType
    ) = UNSET
    input_audio_duration: (
        Annotated[float, Meta(gt=0, le=3600, description="Seconds of the input audio (advisory)")] | UnsetType
    ) = UNSET
    input_video_duration: (
        Annotated[float, Meta(gt=0, le=3600, description="Seconds of the input video (advisory)")] | UnsetType
    ) = UNSET
    operation: (
        Annotated[
            Operation,
            Meta(description="With a source video: extend (continue it) or edit (re-make it under the prompt)"),
        ]
        | UnsetType
    ) = UNSET
    debug: Annotated[DebugOptions, Meta(description="Accepted and ignored")] | UnsetType = UNSET
    beta: Annotated[dict[str, Any], Meta(description="Accepted and ignored")] | UnsetType = UNSET
