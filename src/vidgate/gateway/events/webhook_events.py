"""The webhook event vocabulary: the names a subscription may use and the set it gets by default.

Deliveries always carry ``video.<phase>``. A subscription may also say ``job.<phase>`` (the
reference's name for the same phase of any job) or the bare phase; both mean ``video.<phase>``
here, the only kind of job there is. Endpoints may list ``batch.<phase>`` too, as the reference's
clients do: kept and shown, never delivered (there are no batches).
"""

from __future__ import annotations

PHASES = ("created", "status_changed", "progress", "completed", "failed", "cancelled", "expired")
VIDEO_EVENTS = frozenset(f"video.{phase}" for phase in PHASES)
ENDPOINT_EVENTS = frozenset(f"{kind}.{phase}" for kind in ("job", "video", "batch") for phase in PHASES)
# Every way of ending: a job that expires (its deadline passed) ends as surely as one that fails.
DEFAULT_EVENTS = ("video.completed", "video.failed", "video.cancelled", "video.expired")
TERMINAL_EVENTS = frozenset(DEFAULT_EVENTS)


def video_event(name: str) -> str | None:
    """``name`` as the ``video.*`` event it subscribes to, or None when it names none."""
    text = name.strip().lower()
    kind, dot, phase = text.rpartition(".")
    if not dot:
        phase = text
    elif kind not in ("job", "video"):
        return None
    return f"video.{phase}" if phase in PHASES else None


def endpoint_event(name: str) -> str | None:
    """An endpoint's event name as stored (lower case, bare phases as ``job.<phase>``), or None."""
    text = name.strip().lower()
    if text in PHASES:
        return f"job.{text}"
    return text if text in ENDPOINT_EVENTS else None


def wanted(events: tuple[str, ...], event_type: str) -> bool:
    """Whether a subscription to ``events`` (empty: the defaults) gets ``event_type``.

    A terminal event is a status change too: subscribers to status changes hear of it.
    """
    subscribed = events or DEFAULT_EVENTS
    return event_type in subscribed or ("video.status_changed" in subscribed and event_type in TERMINAL_EVENTS)
