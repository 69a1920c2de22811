"""Verify a vidgate webhook in a receiver: ``vidgate.webhooks.verify(body, headers, secret)``.

Deliveries are signed per the Standard Webhooks spec; this checks the signature and the timestamp
(within five minutes, against replays) and returns the event as a typed ``JobEvent``.
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec
from standardwebhooks import Webhook, WebhookVerificationError

from vidgate.errors import VidgateError
from vidgate.types import JobEvent

__all__ = ["WebhookSignatureError", "verify"]


class WebhookSignatureError(VidgateError):
    status = 400
    code = "invalid_signature"
    type = "webhook_error"


def verify(payload: bytes | str, headers: Mapping[str, str], secret: str) -> JobEvent:
    """The event a delivery carries, or ``WebhookSignatureError`` when it was not signed with ``secret``."""
    lowered = {k.lower(): v for k, v in headers.items()}
    try:
        Webhook(secret).verify(payload, lowered)
    except WebhookVerificationError as exc:
        raise WebhookSignatureError(f"webhook signature check failed: {exc}") from None
    return msgspec.json.decode(payload, type=JobEvent)
