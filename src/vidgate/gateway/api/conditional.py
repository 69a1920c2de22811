"""Entity tags for a job's answers, and ``If-None-Match`` read against them (pure).

A job's ``version`` moves on every write to a column its view shows, so ``W/"<id>-<version>"``
changes whenever the job does. The tag is weak: two renders of one version differ in what the clock
moves (``poll_after_seconds``, a signed link's expiry) but mean the same. A body that carries signed
links adds the half-TTL window it was rendered in, so a client revalidating a copy keeps its links
only while at least half their life is left, and past that gets fresh ones.
"""

from __future__ import annotations

CACHE_CONTROL = "private, no-cache"  # kept by the caller's own cache only, and always revalidated


def etag(job_id: str, version: int, window: int | None = None) -> str:
    """The job's tag; ``window`` (signed links' half-TTL window) when the body carries signed links."""
    if window is None:
        return f'W/"{job_id}-{version}"'
    return f'W/"{job_id}-{version}.{window}"'


def link_window(now_seconds: int, ttl_seconds: int) -> int:
    """Which half-TTL window a signed link made at ``now_seconds`` falls in."""
    return now_seconds // max(1, ttl_seconds // 2)


def _opaque(tag: str) -> str:
    tag = tag.strip()
    if tag.startswith("W/"):
        tag = tag[2:]
    return tag.strip('"')


def matches(if_none_match: str | None, tag: str) -> bool:
    """Whether ``If-None-Match`` names ``tag`` (weak comparison, as the header is defined) or is ``*``."""
    if not if_none_match:
        return False
    want = _opaque(tag)
    for candidate in if_none_match.split(","):
        candidate = candidate.strip()
        if candidate == "*" or _opaque(candidate) == want:
            return True
    return False


def seen_version(if_none_match: str | None, job_id: str) -> int | None:
    """The version of ``job_id`` an ``If-None-Match`` says the client has; None when it names none."""
    if not if_none_match:
        return None
    prefix = f"{job_id}-"
    for candidate in if_none_match.split(","):
        opaque = _opaque(candidate)
        if opaque.startswith(prefix):
            digits = opaque[len(prefix) :].partition(".")[0]
            if digits.isascii() and digits.isdigit() and len(digits) < 19:
                return int(digits)
    return None
