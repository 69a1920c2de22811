"""A job row and its stored spec, made into what a provider sees; and the shape of a job's error."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from vidgate.gateway.net import BlockedURL, fetch_image
from vidgate.gateway.providers.base import JobSpec, ReferenceImage
from vidgate.gateway.render.image import ImageDecodeError
from vidgate.gateway.render.imagesize import oversize, sniff
from vidgate.gateway.secret import Secret, SecretBox, open_keys
from vidgate.gateway.settings import Settings
from vidgate.gateway.storage.db import Row


def job_spec(row: Row, spec: Mapping[str, Any], provider_model: str, refs: tuple[ReferenceImage, ...]) -> JobSpec:
    extras = spec.get("extras") or {}
    return JobSpec(
        job_id=row["id"],
        model=row["model"],
        provider_model=provider_model,
        prompt=spec["prompt"],
        duration=spec["duration"],
        width=spec["width"],
        height=spec["height"],
        resolution=spec.get("resolution"),
        aspect_ratio=spec.get("aspect_ratio"),
        audio=spec["audio"],
        seed=spec.get("seed"),
        negative_prompt=spec.get("negative_prompt"),
        sample_count=spec["sample_count"],
        enhance_prompt=extras.get("enhance_prompt"),
        person_generation=extras.get("person_generation"),
        compression_quality=extras.get("compression_quality"),
        resize_mode=extras.get("resize_mode"),
        references=refs,
        provider_params=spec.get("provider_params") or {},
        deadline_at=row["deadline_at"],
    )


def job_error(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"code": code, "message": message, **{k: v for k, v in extra.items() if v is not None}}


def own_keys(row: Row, box: SecretBox) -> dict[str, Secret]:
    """The owner's own provider keys for this job (BYOK), if it brought any; sealed at rest."""
    return open_keys(box, row["id"], row.get("byok"))


async def fetch_references(
    http: httpx.AsyncClient, spec: Mapping[str, Any], settings: Settings
) -> tuple[ReferenceImage, ...]:
    """Every input reference fetched and checked (SSRF guard, type, size, pixel size) before any provider
    sees it; a picture too large to decode raises ``ImageDecodeError`` naming the input."""
    try:
        refs = tuple(
            [
                await fetch_image(
                    http,
                    ref["role"],
                    ref["url"],
                    allow_private=settings.allow_private_urls,
                    max_bytes=settings.reference_max_bytes,
                )
                for ref in spec.get("references", ())
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
