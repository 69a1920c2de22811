"""Validation of webhook settings, a job's ``webhook`` and an endpoint's alike: pure, no I/O.

A secret is any string a person would pick (8 to 256 printable characters, no surrounding
whitespace: the reference's clients strip it before checking, so it would never verify). No
message ever quotes it.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from vidgate.errors import ValidationError
from vidgate.gateway.catalog.inputs import check_url, clip
from vidgate.gateway.events.webhook_events import PHASES, endpoint_event, video_event
from vidgate.gateway.jobs.spec import Webhook
from vidgate.gateway.secret import Secret
from vidgate.types import WebhookConfig

MIN_SECRET, MAX_SECRET = 8, 256
MAX_URL = 2048
MAX_ENDPOINT_ID = 64
_NAMES = f"video.<phase>, job.<phase> or <phase>, where <phase> is one of {', '.join(PHASES)}"


def check_secret(secret: str | None, param: str = "webhook.secret") -> str:
    """``secret`` when it is one; a refusal naming ``param`` (never quoting the value) when not."""
    rule = f"any string of {MIN_SECRET} to {MAX_SECRET} printable characters"
    if not secret:
        raise ValidationError(f"{param} is required: {rule}", param=param)
    if secret != secret.strip():
        raise ValidationError(f"{param} must not start or end with whitespace", param=param)
    if not MIN_SECRET <= len(secret) <= MAX_SECRET or not secret.isprintable():
        raise ValidationError(f"{param} must be {rule}", param=param)
    return secret


def check_webhook_url(url: str, param: str, *, allow_http: bool) -> None:
    check_url(url, param, allow_http=allow_http, max_chars=MAX_URL)


def job_events(names: Sequence[str], param: str = "webhook.events") -> tuple[str, ...]:
    """A job's subscription as ``video.*`` names, each once, in the order given."""
    out: list[str] = []
    for i, name in enumerate(names):
        event = video_event(name)
        if event is None:
            raise ValidationError(f"unknown webhook event {clip(name)}; use {_NAMES}", param=f"{param}[{i}]")
        if event not in out:
            out.append(event)
    return tuple(out)


def endpoint_events(names: Sequence[str], param: str = "events") -> tuple[str, ...]:
    """An endpoint's subscription as stored: lower case, each once, ``batch.*`` allowed."""
    out: list[str] = []
    for i, name in enumerate(names):
        event = endpoint_event(name)
        if event is None:
            raise ValidationError(
                f"unknown webhook event {clip(name)}; use job.<phase>, video.<phase> or batch.<phase>, "
                f"where <phase> is one of {', '.join(PHASES)}",
                param=f"{param}[{i}]",
            )
        if event not in out:
            out.append(event)
    return tuple(out)


def job_webhook(hook: WebhookConfig | msgspec.UnsetType, *, allow_http: bool) -> Webhook | None:
    """A create's ``webhook`` as the job keeps it. One naming an endpoint holds only its id (and the
    events it overrides) until the job service fills in the endpoint's url and events. One with a
    url and no secret is taken, as the reference takes it: its deliveries go unsigned."""
    if hook is msgspec.UNSET:
        return None
    events = job_events(hook.events) if hook.events is not msgspec.UNSET else ()
    endpoint_id = _endpoint_id(hook)
    if endpoint_id is not None:
        if hook.url is not msgspec.UNSET or hook.secret is not msgspec.UNSET:
            raise ValidationError(
                "give webhook.endpoint_id or webhook.url (with webhook.secret), not both: "
                "the endpoint brings its own url and secret",
                param="webhook.endpoint_id",
            )
        if not 1 <= len(endpoint_id) <= MAX_ENDPOINT_ID:
            raise ValidationError(f"no webhook endpoint {clip(endpoint_id)}", param="webhook.endpoint_id")
        return Webhook("", None, events, endpoint_id=endpoint_id)
    if hook.url is msgspec.UNSET:
        raise ValidationError("webhook.url is required (or webhook.endpoint_id)", param="webhook.url")
    check_webhook_url(hook.url, "webhook.url", allow_http=allow_http)
    if hook.secret is msgspec.UNSET:
        return Webhook(hook.url, None, events)
    if not hook.secret:
        raise ValidationError(
            f"webhook.secret is empty: leave it out for unsigned deliveries, or give any string of "
            f"{MIN_SECRET} to {MAX_SECRET} printable characters",
            param="webhook.secret",
        )
    # Held as a Secret from here on; the job's row keeps it sealed, and only the deliverer opens it.
    return Webhook(hook.url, Secret(check_secret(hook.secret)), events)


def _endpoint_id(hook: WebhookConfig) -> str | None:
    """The endpoint a webhook names, under either spelling (``endpoint_id`` or ``endpointId``)."""
    snake, camel = hook.endpoint_id, hook.endpointId
    if snake is not msgspec.UNSET and camel is not msgspec.UNSET and snake != camel:
        raise ValidationError(
            "webhook.endpoint_id and webhook.endpointId name different endpoints; give one",
            param="webhook.endpoint_id",
        )
    if snake is not msgspec.UNSET:
        return snake
    return None if camel is msgspec.UNSET else camel
