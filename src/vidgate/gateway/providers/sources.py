"""How an input video or audio reaches an upstream that reads media by URI: inline, by its own URL,
or (for an upstream with an upload API) uploaded first.

A reference's bytes are always at hand (the worker fetched them); when it named one of the owner's
assets or uploads, its ``url`` is a short-lived link to the gateway's copy where one can be given
(``worker/input_links``), else empty. Inline is preferred, as for images: a short-lived URL cannot
expire before the upstream reads it, and no link to our own copy leaves the gateway.
"""

from __future__ import annotations

from vidgate.gateway.providers.base import JobSpec, ReferenceImage
from vidgate.gateway.providers.mapping import data_url, unsupported


def inline_or_url(ref: ReferenceImage, max_inline: int, schemes: tuple[str, ...] = ("https://",)) -> str | None:
    """The medium as a ``data:`` URI of at most ``max_inline`` characters, else its own URL when that
    starts with one of ``schemes``, else None (the caller uploads it or refuses)."""
    inline = data_url(ref)
    if len(inline) <= max_inline:
        return inline
    if ref.url.startswith(schemes):
        return ref.url
    return None


def media_uri(ref: ReferenceImage, max_inline: int, who: str, schemes: tuple[str, ...] = ("https://",)) -> str:
    """``inline_or_url``, refusing (so routing can try another provider) a medium it cannot send."""
    uri = inline_or_url(ref, max_inline, schemes)
    if uri is None:
        limit = max_inline * 3 // 4 // (1024 * 1024)
        raise unsupported(
            f"{who} takes the {ref.kind} {ref.role} inline up to about {limit} MB; a larger one needs an https URL"
        )
    return uri


def other_inputs(job: JobSpec, allowed: set[str]) -> list[str]:
    """The job's references whose feature (``role:first_frame``, ``video:source``, ...) is outside
    ``allowed``, named for a refusal: an image by its role, another medium as ``{kind} {role}``."""
    return sorted(
        {r.role if r.kind == "image" else f"{r.kind} {r.role}" for r in job.references if r.feature not in allowed}
    )


def of_kind(job: JobSpec, kind: str, role: str | None = None) -> list[ReferenceImage]:
    """The job's references of ``kind`` (and ``role``, when given), in request order."""
    return [r for r in job.references if r.kind == kind and (role is None or r.role == role)]


def source_video(job: JobSpec, who: str) -> ReferenceImage:
    """The one ``source`` video an extend or edit works on (validation makes sure there is one)."""
    found = of_kind(job, "video", "source")
    if len(found) != 1:
        raise unsupported(f"{who} needs exactly one source video to {job.op}")
    return found[0]
