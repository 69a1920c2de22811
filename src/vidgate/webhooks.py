"""Verify a vidgate webhook in a receiver: ``vidgate.webhooks.verify(body, headers, secret)``.

Every delivery is signed twice over the same body bytes: per the Standard Webhooks spec
(``webhook-id``, ``webhook-timestamp``, ``webhook-signature``) and as the reference gateway signs
(``x-phaseo-timestamp``, ``x-phaseo-signature``), so receivers written for either keep working.
``verify`` accepts either, checks the timestamp (within five minutes, against replays) and returns
the event as a typed ``JobEvent``.

The key of each scheme, for a secret string: Standard Webhooks takes the bytes a ``whsec_`` +
base64 secret encodes, and the UTF-8 bytes of any other secret; the reference's scheme always
takes the UTF-8 bytes of the whole string, ``whsec_`` included.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Mapping

import msgspec
from standardwebhooks import Webhook, WebhookVerificationError

from vidgate.errors import VidgateError
from vidgate.types import JobEvent

__all__ = ["WebhookSignatureError", "reference_signature", "standard_key", "verify"]

TOLERANCE_SECONDS = 300
STANDARD_PREFIX = "whsec_"


class WebhookSignatureError(VidgateError):
    status = 400
    code = "invalid_signature"
    type = "webhook_error"


def standard_key(secret: str) -> bytes:
    """The Standard Webhooks HMAC key of ``secret``."""
    if secret.startswith(STANDARD_PREFIX):
        encoded = secret[len(STANDARD_PREFIX) :]
        try:
            key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
        except (binascii.Error, ValueError):
            key = b""
        if key:
            return key
    return secret.encode("utf-8")


def reference_signature(secret: str, timestamp: str, body: bytes) -> str:
    """``x-phaseo-signature``: hex HMAC-SHA256 over ``{timestamp}.{body}``, keyed by the secret's UTF-8 bytes."""
    return hmac.new(secret.encode("utf-8"), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def _reference_problem(body: bytes, headers: Mapping[str, str], secret: str) -> str | None:
    """Why the ``x-phaseo-*`` signature does not hold, or None when it does."""
    stamp, signature = headers.get("x-phaseo-timestamp", "").strip(), headers.get("x-phaseo-signature", "").strip()
    if not stamp.isdigit() or not signature:
        return "missing or malformed x-phaseo-timestamp or x-phaseo-signature"
    seconds = int(stamp) / 1000 if len(stamp) >= 13 else int(stamp)
    if abs(time.time() - seconds) > TOLERANCE_SECONDS:
        return "x-phaseo-timestamp is not within five minutes of now"
    if not hmac.compare_digest(signature.lower(), reference_signature(secret, stamp, body)):
        return "x-phaseo-signature does not match"
    return None


def verify(payload: bytes | str, headers: Mapping[str, str], secret: str) -> JobEvent:
    """The event a delivery carries, or ``WebhookSignatureError`` when it was not signed with ``secret``.

    Standard Webhooks headers are checked first; the ``x-phaseo-*`` ones when those are absent or
    do not hold (a rotated secret may sign only one of them).
    """
    body = payload.encode() if isinstance(payload, str) else bytes(payload)
    lowered = {k.lower(): v for k, v in headers.items()}
    if not secret:
        raise WebhookSignatureError("webhook signature check failed: no secret to check with")
    problems: list[str] = []
    if "webhook-signature" in lowered:
        try:
            Webhook(standard_key(secret)).verify(body, lowered, json_parse=False)
        except WebhookVerificationError as exc:
            problems.append(str(exc))
        else:
            return msgspec.json.decode(body, type=JobEvent)
    if "x-phaseo-signature" in lowered:
        problem = _reference_problem(body, lowered, secret)
        if problem is None:
            return msgspec.json.decode(body, type=JobEvent)
        problems.append(problem)
    if not problems:
        problems.append("no webhook-signature or x-phaseo-signature header")
    raise WebhookSignatureError(f"webhook signature check failed: {'; '.join(problems)}")
