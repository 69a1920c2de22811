"""A job's webhook delivery summary: kept on the job's row by the deliverer, shown in the job's view.

The deliverer folds every attempt into the ``jobs.webhook_state`` column in the transaction that
records it, so a poll reads the summary with the job, in its one indexed read. The column holds
the public ``delivery`` summary and ``attempts`` (the latest ``HISTORY``) already as the view shows
them, times written once as ISO 8601: a poll passes that JSON through undecoded (``Shown``) and adds
only what the job's spec says (url, events, whether a secret signs).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal, cast

import msgspec

from vidgate.gateway.events.webhook_events import DEFAULT_EVENTS
from vidgate.gateway.jobs.spec import Webhook
from vidgate.types import WebhookDeliveryAttempt, WebhookDeliverySummary, WebhookState

HISTORY = 50
# Tries of one event at most, besides the 24 h the deliverer gives each: with full jitter up to an
# hour apart 24 h take about 60 (99.99% under 90), so this is a bound ``x-phaseo-max-attempts`` keeps.
MAX_ATTEMPTS = 100
AttemptStatus = Literal["delivered", "scheduled_retry", "failed_permanently"]


class Summary(msgspec.Struct):
    """What the ``webhook_state`` column holds; the fields a view shows come first."""

    delivery: WebhookDeliverySummary = msgspec.field(default_factory=WebhookDeliverySummary)
    attempts: list[WebhookDeliveryAttempt] = msgspec.field(default_factory=list)
    pending: dict[str, int] = msgspec.field(default_factory=dict)  # delivery id -> retry due (epoch ms)
    delivered: dict[str, str] = msgspec.field(default_factory=dict)  # delivery id -> event type, in order


class Shown(msgspec.Struct, frozen=True):
    """What a poll reads of the column: the shown parts as JSON, undecoded."""

    delivery: msgspec.Raw
    attempts: msgspec.Raw


_SUMMARY = msgspec.json.Decoder(Summary)
_SHOWN = msgspec.json.Decoder(Shown)
_ENCODER = msgspec.json.Encoder()
_NONE_YET = WebhookDeliverySummary()


def decode_summary(text: str | bytes | None) -> Summary:
    """The column's summary, for the deliverer to add an attempt to; one it cannot read starts over,
    as a summary is never worth a delivery that cannot be recorded."""
    try:
        return _SUMMARY.decode(text) if text else Summary()
    except msgspec.DecodeError:
        return Summary()


def decode_shown(text: str | bytes | None) -> Shown | None:
    """The column as a view shows it (None before any attempt)."""
    return _SHOWN.decode(text) if text else None


def encode_summary(summary: Summary) -> str:
    return _ENCODER.encode(summary).decode()


def iso(ms: int | None) -> str | None:
    """Epoch ms as ISO 8601 in UTC with milliseconds, as the reference writes times."""
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def record(
    summary: Summary,
    *,
    delivery_id: str,
    event_type: str,
    status: AttemptStatus,
    number: int,
    at: int,
    next_at: int | None = None,
    code: int | None = None,
    error: str | None = None,
    preview: str | None = None,
) -> Summary:
    """``summary`` with one attempt (times in epoch ms) folded in."""
    tried = iso(at) or ""
    pending = {k: v for k, v in summary.pending.items() if k != delivery_id}
    delivered = dict(summary.delivered)
    last = summary.delivery
    if status == "delivered":
        delivered[delivery_id] = event_type
    elif status == "scheduled_retry" and next_at is not None:
        pending[delivery_id] = next_at
    attempt = WebhookDeliveryAttempt(
        id=f"{delivery_id}:{number}",
        delivery_key=delivery_id,
        event_type=event_type,
        status=status,
        attempt_number=number,
        max_attempts=MAX_ATTEMPTS,
        tried_at=tried,
        delivered_at=tried if status == "delivered" else None,
        next_retry_at=iso(next_at),
        response_status=code,
        error_message=error,
        response_body_preview=preview,
    )
    failed = status != "delivered"
    shown = WebhookDeliverySummary(
        total_attempts=last.total_attempts + 1,
        delivered_events=len(delivered),
        delivered_event_types=list(dict.fromkeys(delivered.values())),
        pending_retries=len(pending),
        next_retry_at=iso(min(pending.values(), default=None)),
        last_attempt_at=tried,
        last_attempt_status=status,
        last_response_status=code,
        last_delivered_at=last.last_delivered_at if failed else tried,
        last_failure_at=tried if failed else last.last_failure_at,
        last_error_message=error if failed else last.last_error_message,
    )
    return Summary(shown, [*summary.attempts, attempt][-HISTORY:], pending, delivered)


def public_state(hook: Webhook, shown: Shown | None) -> WebhookState:
    """The job view's ``webhook``: where and what, and how delivery went; never the secret.

    The delivery parts go out as the deliverer wrote them (``msgspec.Raw`` encodes as is).
    """
    endpoint_id = hook.endpoint_id or None
    return WebhookState(
        url=hook.url or None,
        events=list(hook.events or DEFAULT_EVENTS),
        has_secret=hook.signed,
        delivery=cast(Any, shown.delivery) if shown is not None else _NONE_YET,
        attempts=cast(Any, shown.attempts) if shown is not None else [],
        endpoint_id=endpoint_id,
    )
