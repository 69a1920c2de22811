"""Finding a job again after a submit whose answer was lost.

An adapter's ``find`` asks its upstream whether a create it may have sent is there. How it asks is
named by ``RemoteProvider.reconcile``: ``lookup`` reads the job back by a marker sent with the
create; ``list`` scans the upstream's recent jobs for one matching what the upstream echoes of our
request. The rules every scan shares live here, so each adapter only says how to page and what to
compare. A scan answers ``None`` only when no job of that kind was made since the gateway made
ours; a match it cannot tell apart from another job is an ``UnknownOutcome``, never a guess.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, TypeVar

from ulid import ULID

from vidgate.gateway.providers.base import Accepted, JobSpec, PollFailed, ProviderError, Rejected, UnknownOutcome

# Upstream clocks and ours may disagree. Too narrow a window could miss our job and answer
# "not there" (a double create); too wide only makes an older look-alike ambiguous.
SKEW_SECONDS = 600.0
# A scan that has not reached back to the job's creation after this many pages gives up.
MAX_PAGES = 10

T = TypeVar("T")


def created_at(job_id: str) -> float | None:
    """When the gateway made the job, in epoch seconds, read from its ULID id (None if not a ULID)."""
    try:
        return ULID.from_str(job_id.rpartition("_")[2].upper()).timestamp
    except ValueError:
        return None


def window_start(job: JobSpec, since: float | None = None) -> float | None:
    """The earliest creation time an upstream job for ``job`` can carry; None when unknown."""
    start = since if since is not None else created_at(job.job_id)
    return None if start is None else start - SKEW_SECONDS


def iso_seconds(value: Any) -> float | None:
    """Epoch seconds of an ISO-8601 timestamp (``…Z`` or with an offset); None when unreadable."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def listed(provider: str, page: Any) -> list[dict[str, Any]]:
    """``page`` when it is a list of objects each with a string ``id``; else a failure to read it."""
    if not isinstance(page, list) or not all(isinstance(i, dict) and isinstance(i.get("id"), str) for i in page):
        raise PollFailed(f"{provider} sent an unreadable list", retryable=True)
    return page


def unknown(provider: str, why: str, code: str = "reconcile_failed", **kw: Any) -> UnknownOutcome:
    """The answer "cannot tell", with why."""
    return UnknownOutcome(f"{provider} cannot tell whether it holds the job: {why}", retryable=True, code=code, **kw)


def no_lookup(provider: str) -> UnknownOutcome:
    """What ``find`` raises on an upstream that offers no way to look a job up."""
    return unknown(provider, "it offers no way to look a job up", code="reconcile_unsupported")


def find_without_lookup(provider: str, build: Callable[[], object]) -> Accepted | None:
    """``find`` where the upstream offers no lookup: a job that ``build`` (the adapter's request mapping)
    refuses was never sent, so surely absent; any other job is unknown."""
    try:
        build()
    except Rejected:
        return None  # refused before sending: nothing was created
    raise no_lookup(provider)


@contextmanager
def asking(provider: str) -> Iterator[None]:
    """A failure to ask (network, 5xx, 429, an unreadable answer) means we cannot tell."""
    try:
        yield
    except UnknownOutcome:
        raise
    except ProviderError as exc:
        raise unknown(provider, exc.message, status_code=exc.status_code, request_id=exc.request_id) from exc


async def recent(
    provider: str,
    pages: AsyncIterator[Sequence[T]],
    created: Callable[[T], float | None],
    start: float | None,
) -> list[T]:
    """The items of newest-first ``pages`` created at or after ``start``.

    Reading stops at the first item older than ``start``. Pages that are not newest first, items
    without a readable creation time, or more than ``MAX_PAGES`` pages make the answer unknown:
    stopping early on a misread order could miss our job.
    """
    found: list[T] = []
    read, oldest = 0, float("inf")
    async for page in pages:
        if read == MAX_PAGES:
            raise unknown(provider, f"more than {MAX_PAGES} pages of recent jobs")
        read += 1
        stamps = [stamp for item in page if (stamp := created(item)) is not None]
        if len(stamps) != len(page):
            raise unknown(provider, "a listed job has no readable creation time")
        if stamps != sorted(stamps, reverse=True) or (stamps and stamps[0] > oldest):
            raise unknown(provider, "its list is not newest first")
        oldest = stamps[-1] if stamps else oldest
        found.extend(item for item, stamp in zip(page, stamps, strict=True) if start is None or stamp >= start)
        if start is not None and stamps and stamps[-1] < start:
            break
    return found


def pick(
    provider: str, candidates: Sequence[T], same: Callable[[T], bool], native_id: Callable[[T], str]
) -> Accepted | None:
    """The one candidate whose echo of our request matches ours; None when there is no candidate.

    ``candidates`` are the upstream's jobs of the same kind made in the window. Any candidate
    means "perhaps": with none or several matching ``same``, the answer is unknown, not "absent".
    """
    if not candidates:
        return None
    matches = [c for c in candidates if same(c)]
    if len(matches) != 1:
        why = "several recent jobs match it" if matches else "recent jobs of its kind exist but none is surely it"
        raise unknown(provider, why, code="reconcile_ambiguous")
    return Accepted(native_id=native_id(matches[0]))
