"""Schemas of the OpenAPI document: the public models, and doc-only Structs for routes that answer dicts."""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from vidgate import types as t
from vidgate.gateway.api.admin import CreateKey, SetLimits, TopUp
from vidgate.gateway.api.admin_lists import JobPage, KeyAccountList, LedgerPage
from vidgate.gateway.api.quote import VideoQuote
from vidgate.gateway.events.stream_tokens import TOKEN_TTL_MAX, StreamTokenRequest


class StreamToken(msgspec.Struct):
    token: str
    expires_at: int
    url: str


class DeliveryAttempt(msgspec.Struct):
    at: int
    status_code: int | None
    latency_ms: int
    error: str | None


class WebhookDelivery(msgspec.Struct):
    id: str
    object: str
    event_id: str
    event_type: str | None
    url: str
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: int | None
    created_at: int | None
    delivered_at: int | None
    log: list[DeliveryAttempt]


class WebhookDeliveryList(msgspec.Struct):
    object: str
    data: list[WebhookDelivery]


class APIKeyList(msgspec.Struct):
    object: str
    data: list[t.APIKey]


class Limits(msgspec.Struct):
    daily_limit: float | None
    monthly_limit: float | None
    rate_per_second: float | None
    rate_burst: int | None
    max_concurrent_jobs: int | None


class Balance(msgspec.Struct):
    object: str
    owner: str
    currency: str
    balance: float
    held: float
    available: float
    limits: Limits


class LedgerEntry(msgspec.Struct):
    id: str
    job_id: str | None
    kind: Literal["topup", "hold", "release", "charge", "adjust"]
    amount: float
    model: str | None
    created_at: int
    memo: str | None


class Ledger(Balance):
    entries: list[LedgerEntry]


class UsageDay(msgspec.Struct):
    date: str
    cost: float
    jobs: int


class UsageModel(msgspec.Struct):
    model: str | None
    cost: float
    jobs: int


class UsageReport(msgspec.Struct):
    object: str
    currency: str
    days: int
    balance: float
    held: float
    available: float
    by_day: list[UsageDay]
    by_model: list[UsageModel]


class ServerSentEvent(msgspec.Struct):
    """One frame of ``text/event-stream``: ``event`` is ``job.snapshot``, ``job.updated`` or ``job.deleted``;
    ``data`` is ``{"type", "event"?, "id"?, "data": Video}`` as JSON text."""

    event: str | msgspec.UnsetType = msgspec.UNSET
    data: str | msgspec.UnsetType = msgspec.UNSET
    id: str | msgspec.UnsetType = msgspec.UNSET
    retry: int | str | msgspec.UnsetType = msgspec.UNSET


class Health(msgspec.Struct):
    status: str
    checks: dict[str, str] | msgspec.UnsetType = msgspec.UNSET


class FileUpload(msgspec.Struct):
    """The multipart form of ``POST /v1/files``: the file's bytes, and what it is for."""

    file: str
    purpose: str | msgspec.UnsetType = msgspec.UNSET


MODELS: list[Any] = [
    t.VideoGenerationRequest,
    t.Video,
    t.VideoList,
    t.VideoRequest,
    t.VideoDeleted,
    t.DownloadURLRequest,
    t.DownloadURL,
    t.VideoModelList,
    VideoQuote,
    t.ErrorEnvelope,
    t.APIKey,
    APIKeyList,
    CreateKey,
    TopUp,
    SetLimits,
    Balance,
    Ledger,
    UsageReport,
    t.UsageLimits,
    KeyAccountList,
    LedgerPage,
    JobPage,
    StreamTokenRequest,
    StreamToken,
    WebhookDelivery,
    WebhookDeliveryList,
    ServerSentEvent,
    Health,
    t.WebhookEndpointCreate,
    t.WebhookEndpointUpdate,
    t.WebhookSecretRotation,
    t.WebhookEndpoint,
    t.WebhookEndpointSecret,
    t.WebhookEndpointList,
    t.WebhookEndpointDeleted,
    t.WebhookEndpointTestResult,
    FileUpload,
    t.UploadedFile,
    t.FileList,
    t.FileDeleted,
]

SECRET = {"minLength": 8, "maxLength": 256, "pattern": "^\\S(.*\\S)?$"}
# Bounds the routes enforce beyond the Structs' types, so valid examples really are valid.
CONSTRAINTS: dict[str, dict[str, dict[str, Any]]] = {
    "DownloadURLRequest": {
        "index": {"minimum": 0, "maximum": 63},
        "ttl_seconds": {"minimum": 60, "maximum": 3600},
    },
    "StreamTokenRequest": {"ttl_seconds": {"minimum": 1, "maximum": TOKEN_TTL_MAX}},
    "WebhookConfig": {
        "url": {"maxLength": 2048},
        "secret": SECRET,
        "endpoint_id": {"maxLength": 64},
        "endpointId": {"maxLength": 64},
    },
    "WebhookEndpointCreate": {"url": {"maxLength": 2048}, "name": {"maxLength": 200}, "secret": SECRET},
    "WebhookEndpointUpdate": {"url": {"maxLength": 2048}, "name": {"maxLength": 200}},
    "WebhookSecretRotation": {"overlap_seconds": {"minimum": 0, "maximum": 7 * 24 * 3600}},
    "FileUpload": {"file": {"format": "binary"}, "purpose": {"maxLength": 64}},
}


def components() -> dict[str, Any]:
    _, schemas = msgspec.json.schema_components(MODELS, ref_template="#/components/schemas/{name}")
    for name, fields in CONSTRAINTS.items():
        for field, bounds in fields.items():
            schemas[name]["properties"][field].update(bounds)
    return schemas
