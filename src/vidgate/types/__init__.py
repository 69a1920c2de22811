"""Public request, response and event models, shared by the gateway and the SDK.

Fields typed ``X | UnsetType`` are left out of the JSON when they do not apply, so responses
validate against the published schema (which marks only some fields nullable). The models live in
one module per concern; this package names them all, so callers import from ``vidgate.types``.
"""

from __future__ import annotations

from msgspec import UNSET

from vidgate.types.admin import APIKey
from vidgate.types.base import TERMINAL_STATUSES
from vidgate.types.base import FrameType as FrameType
from vidgate.types.base import LifecycleStatus as LifecycleStatus
from vidgate.types.base import Operation as Operation
from vidgate.types.base import OutputAccess as OutputAccess
from vidgate.types.base import ReferenceType as ReferenceType
from vidgate.types.base import Role as Role
from vidgate.types.base import Status as Status
from vidgate.types.billing import Billing, Usage
from vidgate.types.billing import BillingState as BillingState
from vidgate.types.billing import ReservationStatus as ReservationStatus
from vidgate.types.error_envelope import ErrorBody, ErrorEnvelope
from vidgate.types.events import JobEvent
from vidgate.types.files import FileDeleted, FileKind, FileList, UploadedFile
from vidgate.types.models import ModelCapabilities, ModelProvider, ParamDetail, Price, VideoModel, VideoModelList
from vidgate.types.requests import (
    DebugOptions,
    FrameImage,
    ImageURL,
    InputReference,
    MediaURL,
    OutputConfig,
    ProviderRouting,
    VideoGenerationRequest,
    WebhookConfig,
)
from vidgate.types.usage import SpendWindow, UsageLimits
from vidgate.types.videos import (
    Asset,
    DownloadURL,
    DownloadURLRequest,
    InlineData,
    JobError,
    ProviderAttempt,
    RequestReference,
    RequestRouting,
    Video,
    VideoDeleted,
    VideoList,
    VideoOutput,
    VideoRequest,
)
from vidgate.types.webhooks import WebhookAttemptStatus as WebhookAttemptStatus
from vidgate.types.webhooks import (
    WebhookDeliveryAttempt,
    WebhookDeliverySummary,
    WebhookEndpoint,
    WebhookEndpointCreate,
    WebhookEndpointDeleted,
    WebhookEndpointList,
    WebhookEndpointSecret,
    WebhookEndpointTestResult,
    WebhookEndpointUpdate,
    WebhookSecretRotation,
    WebhookState,
)
from vidgate.types.webhooks import WebhookEndpointStatus as WebhookEndpointStatus

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
    "InlineData",
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
    "RequestReference",
    "RequestRouting",
    "SpendWindow",
    "UploadedFile",
    "Usage",
    "UsageLimits",
    "Video",
    "VideoDeleted",
    "VideoGenerationRequest",
    "VideoList",
    "VideoModel",
    "VideoModelList",
    "VideoOutput",
    "VideoRequest",
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
