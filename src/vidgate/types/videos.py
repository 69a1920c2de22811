"""A video job as the routes answer it: its outputs, attempts and errors, lists of jobs, and download links."""

from __future__ import annotations

from typing import Literal

from msgspec import UNSET, UnsetType

from vidgate.types.base import LifecycleStatus, Operation, OutputAccess, Status, _Request, _Response
from vidgate.types.billing import Billing, Usage
from vidgate.types.webhooks import WebhookState


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


class InlineData(_Response):
    """A ``data:`` URL input, described by its type and size: its bytes are never shown back."""

    mime_type: str
    bytes: int


class RequestReference(_Response):
    """One input as the job stored it. Its source is one of ``url`` (an https:// URL), ``data`` (an
    inline ``data:`` URL), ``file_id`` (an upload) and ``asset_id`` (an earlier job's output; ``job_id``
    is the job that made it: the id itself when it names a job, else the job an ``ast_…`` output came
    from, while the job's owner still has it)."""

    role: str
    kind: Literal["image", "video", "audio"]
    url: str | UnsetType = UNSET
    data: InlineData | UnsetType = UNSET
    file_id: str | UnsetType = UNSET
    asset_id: str | UnsetType = UNSET
    job_id: str | UnsetType = UNSET


class RequestRouting(_Response):
    """The ``provider`` preferences the job was created with, defaults filled in."""

    include_alpha: bool = False
    allow_fallbacks: bool = True
    order: list[str] | UnsetType = UNSET
    only: list[str] | UnsetType = UNSET
    ignore: list[str] | UnsetType = UNSET


class VideoRequest(_Response):
    """What a job was created with, every default filled in, in the create body's names so it can be
    sent again. Nothing secret: no webhook, no provider keys, and of ``provider_params`` and
    ``provider_options`` only the names of the fields set (their values may be credentials)."""

    id: str
    model: str
    prompt: str
    duration: int
    size: str
    generate_audio: bool
    sample_count: int
    output_access: OutputAccess
    provider: RequestRouting
    input_references: list[RequestReference]
    provider_params_keys: list[str]
    object: str = "video.request"
    resolution: str | None = None
    aspect_ratio: str | None = None
    seed: int | None = None
    negative_prompt: str | None = None
    operation: Operation | UnsetType = UNSET
    enhance_prompt: bool | UnsetType = UNSET
    compression_quality: int | UnsetType = UNSET
    person_generation: str | UnsetType = UNSET
    resize_mode: str | UnsetType = UNSET
    provider_options_keys: dict[str, list[str]] | UnsetType = UNSET
    input_audio_duration: float | UnsetType = UNSET
    input_video_duration: float | UnsetType = UNSET
