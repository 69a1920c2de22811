"""Public request, response and event models, shared by the gateway and the SDK.

Fields typed ``X | UnsetType`` are left out of the JSON when they do not apply, so responses
validate against the published schema (which marks only some fields nullable).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

import msgspec
from msgspec import UNSET, Meta, UnsetType

Status = Literal["queued", "processing", "completed", "failed", "cancelled", "expired"]
# The reference's name for each status: ``pending`` until a provider runs the job, then ``running``.
LifecycleStatus = Literal["pending", "running", "completed", "failed", "cancelled", "expired"]
TERMINAL_STATUSES: frozenset[str] = frozenset({"completed", "failed", "cancelled", "expired"})
OutputAccess = Literal["bytes", "signed_url", "both"]
Role = Literal["first_frame", "last_frame", "reference", "source", "mask"]
ReferenceType = Literal["image_url", "video_url", "audio_url", "image", "video", "audio", "mask"]
FrameType = Literal["first_frame", "last_frame"]
# What a job with a ``source`` video does with it: continue it, or re-make it under the prompt.
Operation = Literal["extend", "edit"]


class _Request(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    pass


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
    # A poster frame (image/webp) and a spritesheet of evenly spaced frames (image/jpeg), where the
    # output has them; absent on outputs stored before they were made or that they failed for.
    thumbnail_url: str | UnsetType = UNSET
    spritesheet_url: str | UnsetType = UNSET


class Usage(_Response):
    cost: float
    is_byok: bool = False
    output_video_seconds: float = 0.0


BillingState = Literal["pending", "estimated", "settled", "void"]
ReservationStatus = Literal["held", "settled", "void", "none"]


class Billing(_Response):
    """What the job costs: the reference's billing summary (exact decimal dollar strings and whole
    nano-dollars) with vidgate's own figures in dollars (``held``, ``settled``) alongside.

    ``state``: ``estimated`` while a hold is on (``pending`` when nothing is held), ``settled`` once
    charged, ``void`` when the hold was released uncharged. ``reservation_status`` is the hold's own
    state: ``held``, ``settled``, ``void``, or ``none``. Events stored by older gateways carry an
    older ``state`` spelling (``held``, ``none``) and no reference fields, hence the loose types.
    """

    currency: str
    state: Annotated[str, Meta(extra_json_schema={"enum": list(get_args(BillingState))})]
    held: float
    settled: float
    reservation_id: str | UnsetType = UNSET
    reservation_status: ReservationStatus | UnsetType = UNSET
    billable: bool | UnsetType = UNSET
    charged: bool | UnsetType = UNSET
    estimated_user_cost: str | UnsetType = UNSET
    settled_user_cost: str | UnsetType | None = UNSET
    estimated_nanos: int | UnsetType = UNSET
    reserved_nanos: int | UnsetType = UNSET
    total_nanos: int | UnsetType | None = UNSET


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


WebhookAttemptStatus = Literal["delivered", "scheduled_retry", "failed_permanently"]


class WebhookDeliveryAttempt(_Response):
    """One try of one event; times are ISO 8601 (UTC)."""

    id: str
    delivery_key: str
    event_type: str
    status: WebhookAttemptStatus
    attempt_number: int
    max_attempts: int
    tried_at: str
    delivered_at: str | None = None
    next_retry_at: str | None = None
    response_status: int | None = None
    error_message: str | None = None
    response_body_preview: str | None = None


class WebhookDeliverySummary(_Response):
    total_attempts: int = 0
    delivered_events: int = 0
    delivered_event_types: list[str] = msgspec.field(default_factory=list)
    pending_retries: int = 0
    next_retry_at: str | None = None
    last_attempt_at: str | None = None
    last_attempt_status: WebhookAttemptStatus | None = None
    last_response_status: int | None = None
    last_delivered_at: str | None = None
    last_failure_at: str | None = None
    last_error_message: str | None = None


class WebhookState(_Response):
    """A job's webhook as its owner sees it: where, which events, how delivery went; never the secret."""

    url: str | None
    events: list[str]
    has_secret: bool
    delivery: WebhookDeliverySummary
    attempts: list[WebhookDeliveryAttempt]
    endpoint_id: str | None = None


class Video(_Response):
    """A video job as every route returns it (the spec's VideoGenerationResponse)."""

    id: str
    status: Status
    model: str
    created_at: int
    object: str = "video"
    lifecycle_status: LifecycleStatus | UnsetType = UNSET
    polling_url: str | UnsetType = UNSET
    websocket_url: str | UnsetType = UNSET
    cancel_url: str | None = None  # while the job can still be cancelled
    poll_after_seconds: int | UnsetType = UNSET
    provider: str | UnsetType = UNSET
    request_id: str | UnsetType = UNSET
    output_access: OutputAccess = "both"
    generation_id: str | None = None
    native_video_id: str | None = None  # the provider's id for the job, once one accepted it
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
    thumbnail_url: str | UnsetType = UNSET  # output 0's, as ``outputs[0].thumbnail_url``
    spritesheet_url: str | UnsetType = UNSET
    asset: Asset | None = None
    outputs: list[VideoOutput] | UnsetType = UNSET
    usage: Usage | UnsetType = UNSET
    billing: Billing | UnsetType = UNSET
    attempts: list[ProviderAttempt] | UnsetType = UNSET
    error: JobError | None = None
    webhook: WebhookState | UnsetType = UNSET


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


FileKind = Literal["image", "video", "audio"]


class UploadedFile(_Response):
    """An upload (``POST /v1/files``): what its bytes turned out to be, and until when it is kept."""

    id: str
    bytes: int
    mime_type: str
    kind: FileKind
    sha256: str
    created_at: int
    expires_at: int
    width: int | None = None
    height: int | None = None
    duration_seconds: float | None = None
    purpose: str | None = None
    object: str = "file"


class FileList(_Response):
    data: list[UploadedFile]
    has_more: bool
    object: str = "list"
    first_id: str | None = None
    last_id: str | None = None


class FileDeleted(_Response):
    id: str
    object: str = "file"
    deleted: bool = True


class DownloadURLRequest(_Request):
    index: int = 0
    ttl_seconds: int = 900
    disposition: Literal["attachment", "inline"] = "attachment"
    variant: Literal["video", "thumbnail", "spritesheet"] = "video"


class DownloadURL(_Response):
    """A signed link: ``download_url`` (the reference's name) and ``url`` are the same absolute URL."""

    download_url: str
    expires_at: int
    url: str
    index: int
    disposition: str
    object: str = "video.download_url"


class ParamDetail(_Response):
    """What a model (or one of its providers) takes for one request field: its kind, the values or
    bounds it accepts, its default, the other names it is accepted under, and (model-wide) which
    providers take it."""

    supported: bool = True
    type: str | UnsetType = UNSET
    values: list[Any] | UnsetType = UNSET
    min: float | UnsetType = UNSET
    max: float | UnsetType = UNSET
    default: Any | UnsetType = UNSET
    aliases: list[str] | UnsetType = UNSET
    roles: dict[str, list[str]] | UnsetType = UNSET  # input references: the roles taken, by kind of medium
    providers: list[str] | UnsetType = UNSET


class ModelProvider(_Response):
    """A provider of a model: vidgate's ``name`` and state, and the reference's ``id`` and ``supported_*``."""

    name: str
    alpha: bool = False
    available: bool = True
    healthy: bool = True
    id: str = ""
    supported_params: list[str] = msgspec.field(default_factory=list)
    supported_parameters: list[str] = msgspec.field(default_factory=list)
    supported_params_detail: dict[str, ParamDetail] = msgspec.field(default_factory=dict)
    supported_parameters_detail: dict[str, ParamDetail] = msgspec.field(default_factory=dict)


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
    # Rules the upstreams enforce, present where the model has them: the durations a resolution is
    # made at, the durations and resolutions a reference role needs, features one request may not
    # combine, and audio that no provider can turn off.
    durations_by_resolution: dict[str, list[int]] | UnsetType = UNSET
    role_durations: dict[str, list[int]] | UnsetType = UNSET
    role_resolutions: dict[str, list[str]] | UnsetType = UNSET
    exclusive: list[list[str]] | UnsetType = UNSET
    audio_always: bool | UnsetType = UNSET
    # The jobs the model runs: ``generate`` (unless it needs a source video) and, on a source video
    # (an input reference of type video with role source), ``extend`` and ``edit``.
    operations: list[str] = msgspec.field(default_factory=lambda: ["generate"])
    video_reference_roles: list[str] = msgspec.field(default_factory=list)
    audio_reference_roles: list[str] = msgspec.field(default_factory=list)
    max_reference_images: int | UnsetType = UNSET  # images with the role reference
    extend_durations: list[int] | UnsetType = UNSET  # the seconds an extend adds, where not ``durations``
    input_video_seconds: list[float] | UnsetType = UNSET  # [shortest, longest] input video it takes
    input_audio_seconds: list[float] | UnsetType = UNSET


class Price(_Response):
    currency: str
    per_second: float
    per_request: float = 0.0
    tiers: list[dict[str, Any]] | UnsetType = UNSET


class VideoModel(_Response):
    """A model of the catalogue: vidgate's ``id`` and ``capabilities`` alongside the reference's
    ``model``, ``status``, ``input_types``, ``output_types`` and ``supported_*`` (``supported_params``
    and ``supported_parameters`` are one list under two names, as are their ``_detail``)."""

    id: str
    name: str
    capabilities: ModelCapabilities
    providers: list[ModelProvider]
    pricing: Price | UnsetType = UNSET
    object: str = "video.model"
    description: str | UnsetType = UNSET
    model: str = ""
    status: str = "active"  # "unavailable" when none of its providers is configured; "retired"
    retired: str | UnsetType = UNSET  # the date its maker stopped serving it (listed with include_retired)
    input_types: list[str] = msgspec.field(default_factory=list)
    output_types: list[str] = msgspec.field(default_factory=list)
    supported_params: list[str] = msgspec.field(default_factory=list)
    supported_parameters: list[str] = msgspec.field(default_factory=list)
    supported_params_detail: dict[str, ParamDetail] = msgspec.field(default_factory=dict)
    supported_parameters_detail: dict[str, ParamDetail] = msgspec.field(default_factory=dict)


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


WebhookEndpointStatus = Literal["active", "disabled", "deleted"]


class WebhookEndpointCreate(_Request):
    """The body of ``POST /v1/webhook-endpoints``; without ``secret`` one is generated."""

    url: str
    name: str | UnsetType = UNSET
    events: list[str] | UnsetType = UNSET
    secret: str | UnsetType = UNSET


class WebhookEndpointUpdate(_Request):
    url: str | UnsetType = UNSET
    name: str | UnsetType = UNSET
    events: list[str] | UnsetType = UNSET
    status: Literal["active", "disabled"] | UnsetType = UNSET


class WebhookSecretRotation(_Request):
    """How long the previous secret keeps signing beside the new one (seconds; 0 ends it at once)."""

    overlap_seconds: int = 86400


class WebhookEndpoint(_Response):
    """A registered receiver, in the reference SDK's camelCase; times are ISO 8601 (UTC)."""

    id: str
    name: str
    url: str
    events: list[str]
    hasSecret: bool
    status: WebhookEndpointStatus
    workspaceId: str
    createdAt: str | None = None
    updatedAt: str | None = None
    deletedAt: str | None = None
    object: str = "webhook_endpoint"


class WebhookEndpointSecret(WebhookEndpoint, kw_only=True):
    """An endpoint with its signing secret: answered by create and rotate only."""

    signing_secret: str


class WebhookEndpointList(_Response):
    data: list[WebhookEndpoint]
    object: str = "list"


class WebhookEndpointDeleted(_Response):
    id: str
    deleted: bool = True
    object: str = "webhook_endpoint"


class WebhookEndpointTestResult(_Response):
    """What a signed test event to the endpoint met."""

    ok: bool
    event_id: str
    status_code: int | None
    error: str | None
    response_body_preview: str | None


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
    "DebugOptions",
    "DownloadURL",
    "DownloadURLRequest",
    "ErrorBody",
    "ErrorEnvelope",
    "FileDeleted",
    "FileKind",
    "FileList",
    "FrameImage",
    "ImageURL",
    "InputReference",
    "JobError",
    "JobEvent",
    "MediaURL",
    "ModelCapabilities",
    "ModelProvider",
    "OutputConfig",
    "ParamDetail",
    "Price",
    "ProviderAttempt",
    "ProviderRouting",
    "UploadedFile",
    "Usage",
    "Video",
    "VideoDeleted",
    "VideoGenerationRequest",
    "VideoList",
    "VideoModel",
    "VideoModelList",
    "VideoOutput",
    "WebhookConfig",
    "WebhookDeliveryAttempt",
    "WebhookDeliverySummary",
    "WebhookEndpoint",
    "WebhookEndpointCreate",
    "WebhookEndpointDeleted",
    "WebhookEndpointList",
    "WebhookEndpointSecret",
    "WebhookEndpointTestResult",
    "WebhookEndpointUpdate",
    "WebhookSecretRotation",
    "WebhookState",
]
