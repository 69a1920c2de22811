"""The headers of one webhook attempt: both signature schemes over the exact body bytes sent.

Standard Webhooks (``webhook-*``) signs with every secret in force, so during a rotation's overlap
``webhook-signature`` carries ``v1,<new> v1,<old>``; the reference's ``x-phaseo-signature`` holds
one digest, the newest secret's, as its clients compare one value. Keys follow
``vidgate.webhooks``: the receiver's ``verify`` derives them the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import msgspec
from standardwebhooks import Webhook

from vidgate.gateway.secret import Secret
from vidgate.webhooks import reference_signature, standard_key


class Attempt(msgspec.Struct, frozen=True):
    """What the reference's headers say about the attempt besides its signatures."""

    event_id: str
    event_type: str
    number: int  # 1-based, counted per event over all its tries
    max_attempts: int
    delivery_key: str


def signed_headers(
    body: bytes, secrets: Sequence[Secret], attempt: Attempt, *, now: datetime | None = None
) -> dict[str, str]:
    """Headers for sending ``body``; ``secrets`` newest first (one, or two during a rotation's overlap)."""
    sent_at = now or datetime.now(tz=UTC)
    stamp = str(int(sent_at.timestamp()))
    headers = {
        "content-type": "application/json",
        "webhook-id": attempt.event_id,
        "webhook-timestamp": stamp,
        "x-phaseo-event-id": attempt.event_id,
        "x-phaseo-event-type": attempt.event_type,
        "x-phaseo-attempt": str(attempt.number),
        "x-phaseo-max-attempts": str(attempt.max_attempts),
        "x-phaseo-delivery-key": attempt.delivery_key,
    }
    if secrets:
        revealed = [s.reveal() for s in secrets]
        headers["webhook-signature"] = " ".join(
            Webhook(standard_key(s)).sign(attempt.event_id, sent_at, body) for s in revealed
        )
        headers["x-phaseo-timestamp"] = stamp
        headers["x-phaseo-signature"] = reference_signature(revealed[0], stamp, body)
    return headers
