"""Asking an upstream to stop a job: the call every cancelling adapter makes, and the adapters that cannot.

A cancel that the upstream refuses for good (unknown id, a job past cancelling) answers False and the
worker keeps polling; one that failed for now (network, 5xx, 429) raises so it is tried again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vidgate.gateway.providers.base import ProviderError
from vidgate.gateway.providers.http import Client, request


async def cancel_request(
    client: Client,
    method: str,
    url: str,
    *,
    expect: tuple[int, ...],
    headers: Mapping[str, str],
    refused: tuple[int, ...] = (),
) -> tuple[bool, Any]:
    """Send the cancel: ``(True, body)`` when the upstream took it, ``(False, None)`` when it refused.

    A failure that may pass raises, unless its status is one of ``refused`` (an answer the upstream
    gives for a job it will not cancel).
    """
    try:
        body, _ = await request(client, method, url, phase="cancel", expect=expect, headers=headers)
    except ProviderError as exc:
        if exc.retryable and exc.status_code not in refused:
            raise
        return False, None
    return True, body


class CannotCancel:
    """For an upstream with no cancel: the worker stops tracking the job and voids its hold instead."""

    cancellable = False

    async def cancel(self, native_id: str) -> bool:
        return False
