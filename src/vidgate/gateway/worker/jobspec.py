"""A job made into what a provider sees: its references fetched and checked, its own keys opened."""

from __future__ import annotations

from collections.abc import Sequence

import httpx

from vidgate.gateway.jobs.records import JobRecord
from vidgate.gateway.jobs.spec import Reference
from vidgate.gateway.net import BlockedURL, fetch_image
from vidgate.gateway.providers.base import JobSpec, ReferenceImage
from vidgate.gateway.render.image import ImageDecodeError
from vidgate.gateway.render.imagesize import oversize, sniff
from vidgate.gateway.secret import Secret, SecretBox, open_keys
from vidgate.gateway.settings import Settings


def job_spec(job: JobRecord, provider_model: str, refs: tuple[ReferenceImage, ...]) -> JobSpec:
    return JobSpec.of(
        job.spec, job_id=job.id, provider_model=provider_model, deadline_at=job.deadline_at, references=refs
    )


def own_keys(job: JobRecord, box: SecretBox) -> dict[str, Secret]:
    """The owner's own provider keys for this job (BYOK), if it brought any; sealed at rest."""
    return open_keys(box, job.id, None if job.byok is None else job.byok.reveal())


async def fetch_references(
    http: httpx.AsyncClient, references: Sequence[Reference], settings: Settings
) -> tuple[ReferenceImage, ...]:
    """Every input reference fetched and checked (SSRF guard, type, size, pixel size) before any provider
    sees it; a picture too large to decode raises ``ImageDecodeError`` naming the input."""
    try:
        refs = tuple(
            [
                await fetch_image(
                    http,
                    ref.role,
                    ref.url,
                    allow_private=settings.allow_private_urls,
                    max_bytes=settings.reference_max_bytes,
                )
                for ref in references
            ]
        )
    except ValueError as exc:  # a redirect to a URL that does not parse: no retry can fix it
        if isinstance(exc, BlockedURL):
            raise
        raise BlockedURL(f"the image URL redirected to a URL that does not parse ({exc})") from exc
    for i, ref in enumerate(refs):
        info = sniff(ref.data)
        if info is not None and (why := oversize(info)) is not None:
            raise ImageDecodeError(f"input_references[{i}].image_url.url ({ref.role}): {why}")
    return refs
