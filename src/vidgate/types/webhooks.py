"""Webhooks: a job's delivery state, and the registered endpoints that receive them."""

from __future__ import annotations

from typing import Literal

import msgspec
from msgspec import UNSET, UnsetType

from vidgate.types.base import _Request, _Response

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
