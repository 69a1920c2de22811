"""Public request, response and event models, shared by the gateway and the SDK.

Fields typed ``X | UnsetType`` are left out of the JSON when they do not apply, so responses
validate against the published schema (which marks only some fields nullable).
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

Status = Literal["queued", "processing", "completed", "failed", "cancelled", "expired"]
TERMINAL_STATUSES: frozenset[str] = frozenset({"completed", "failed", "cancelled", "expired"})
OutputAccess = Literal["bytes", "signed_url", "both"]
Role = Literal["first_frame", "last_frame", "reference", "source", "mask"]


class _Request(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    pass


class ImageURL(_Request):
    url: str


class InputReference(_Request):
    type: Literal["image_url"]
    image_url: ImageURL
    role: Role = "reference"
    reference_type: str | UnsetType = UNSET


class OutputConfig(_Request):
    access: OutputAccess = "both"


class WebhookConfig(_Request):
    url: str
    secret: str | UnsetType = UNSET
    events: list[str] | UnsetType = UNSET


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


class _Response(msgspec.Struct):
    """Responses always carry their defaults (``object``, ``is_byok``…); only UNSET fields are left out."""


class Asset(_Response):
    id: str
    mime_type: str
    bytes: int
    sha256: str
    width: int
    height: int
    duration_seconds: float


class VideoOutput(_Response):
    index: int
    mime_type: str
    bytes_available: bool
    content_url: str | UnsetType = UNSET
    download_url: str | UnsetType = UNSET
    expires_at: int | UnsetType = UNSET
    asset: Asset | UnsetType = UNSET


class Usage(_Response):
    cost: float
    is_byok: bool = False
    output_video_seconds: float = 0.0


class Billing(_Response):
    currency: str
    state: Literal["held", "settled", "void", "none"]
    held: float
    settled: float
    reservation_id: str | UnsetType = UNSET


class ProviderAttempt(_Response):
    """One create sent to a provider. ``submitting``: sent, no answer yet; ``unknown``: its answer was
    lost, so the job may exist there (``pending`` is how older gateways spelt ``submitting``)."""

    provider: str
    outcome: Literal["accepted", "rejected", "skipped", "pending", "submitting", "unknown"]
    at: int
    message: str | UnsetType = UNSET
    status_code: int | UnsetType = UNSET


class JobError(_Response):
    code: str
    message: str
    provider: str | UnsetType = UNSET
    provider_request_id: str | UnsetType = UNSET
    attempts: list[ProviderAttempt] | UnsetType = UNSET


class Video(_Response):
    """A video job as every route returns it (the spec's VideoGenerationResponse)."""

    id: str
    status: Status
    model: str
    created_at: int
    object: str = "video"
    polling_url: str | UnsetType = UNSET
    poll_after_seconds: int | UnsetType = UNSET
    provider: str | UnsetType = UNSET
    request_id: str | UnsetType = UNSET
    output_access: OutputAccess = "both"
    generation_id: str | None = None
    started_at: int | None = None
    completed_at: int | None = None
    seconds: float | UnsetType = UNSET
    size: str | UnsetType = UNSET
    audio: bool | UnsetType = UNSET
    prompt: str | UnsetType = UNSET
    progress: int | None = None
    progress_source: str | UnsetType = UNSET
    content_url: str | UnsetType = UNSET
    download_url: str | UnsetType | None = UNSET
    expires_at: int | UnsetType | None = UNSET
    asset: Asset | None = None
    outputs: list[VideoOutput] | UnsetType = UNSET
    usage: Usage | UnsetType = UNSET
    billing: Billing | UnsetType = UNSET
    attempts: list[ProviderAttempt] | UnsetType = UNSET
    error: JobError | None = None


class VideoList(_Response):
    data: list[Video]
    has_more: bool
    object: str = "list"
    first_id: str | None = None
    last_id: str | None = None


class VideoDeleted(_Response):
    id: str
    object: str = "video.deleted"
    deleted: bool = True


class DownloadURLRequest(_Request):
    index: int = 0
    ttl_seconds: int = 900
    disposition: Literal["attachment", "inline"] = "attachment"


class DownloadURL(_Response):
    url: str
    expires_at: int
    index: int
    disposition: str
    object: str = "video.download_url"


class ModelProvider(_Response):
    name: str
    alpha: bool = False
    available: bool = True
    healthy: bool = True


class ModelCapabilities(_Response):
    durations: list[int]
    resolutions: list[str]
    aspect_ratios: list[str]
    sizes: list[str] | UnsetType = UNSET
    size_range: dict[str, int] | UnsetType = UNSET
    audio: bool = False
    seed: bool = False
    negative_prompt: bool = False
    sample_count: list[int] = msgspec.field(default_factory=lambda: [1, 1])
    input_reference_roles: list[str] = msgspec.field(default_factory=list)
    required_reference_roles: list[str] = msgspec.field(default_factory=list)
    extra_parameters: list[str] = msgspec.field(default_factory=list)
    cancellable: bool = False


class Price(_Response):
    currency: str
    per_second: float
    per_request: float = 0.0
    tiers: list[dict[str, Any]] | UnsetType = UNSET


class VideoModel(_Response):
    id: str
    name: str
    capabilities: ModelCapabilities
    providers: list[ModelProvider]
    pricing: Price | UnsetType = UNSET
    object: str = "video.model"
    description: str | UnsetType = UNSET


class VideoModelList(_Response):
    data: list[VideoModel]
    object: str = "list"


class ErrorBody(_Response):
    type: str
    code: str
    message: str
    param: str | None = None
    request_id: str | None = None
    status: int | UnsetType = UNSET
    details: dict[str, Any] | UnsetType = UNSET


class ErrorEnvelope(_Response):
    error: ErrorBody


class APIKey(_Response):
    id: str
    name: str
    created_at: int
    key: str | UnsetType = UNSET
    prefix: str | UnsetType = UNSET
    revoked_at: int | None = None
    object: str = "api_key"


class JobEvent(_Response):
    """A lifecycle event, as a webhook delivery's body carries it (websockets and server-sent events
    send its ``id``, ``type`` and job in their own ``job.updated`` frame)."""

    id: str
    type: str
    created_at: int
    data: Video


__all__ = [
    "TERMINAL_STATUSES",
    "UNSET",
    "APIKey",
    "Asset",
    "Billing",
    "DownloadURL",
    "DownloadURLRequest",
    "ErrorBody",
    "ErrorEnvelope",
    "ImageURL",
    "InputReference",
    "JobError",
    "JobEvent",
    "ModelCapabilities",
    "ModelProvider",
    "OutputConfig",
    "Price",
    "ProviderAttempt",
    "ProviderRouting",
    "Usage",
    "Video",
    "VideoDeleted",
    "VideoGenerationRequest",
    "VideoList",
    "VideoModel",
    "VideoModelList",
    "VideoOutput",
    "WebhookConfig",
]
