"""A job made into what a provider sees: its references fetched and checked, its own keys opened, and
the request's options for that provider over its ``provider_params``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import httpx
import msgspec

from vidgate.gateway.catalog.references import MIME_TYPES
from vidgate.gateway.jobs.assets import AssetReader
from vidgate.gateway.jobs.files import FileReader
from vidgate.gateway.jobs.records import JobRecord
from vidgate.gateway.jobs.spec import Reference
from vidgate.gateway.net import BlockedURL, fetch_image
from vidgate.gateway.providers.base import JobSpec, ReferenceImage
from vidgate.gateway.render.image import ImageDecodeError
from vidgate.gateway.render.imagesize import oversize, sniff
from vidgate.gateway.secret import Secret, SecretBox, open_keys
from vidgate.gateway.settings import Settings

if TYPE_CHECKING:
    from vidgate.gateway.worker.context import WorkerContext

# What a fetched reference of each kind may be, as its server names it, and the refusal's words.
ACCEPTED = {
    "image": (MIME_TYPES["image"], "an image (png, jpeg, webp, gif)"),
    "video": (MIME_TYPES["video"], "a video (mp4, webm, quicktime)"),
    "audio": (MIME_TYPES["audio"], "an audio file (mpeg, wav, mp4, aac, ogg, flac)"),
}


def job_spec(
    job: JobRecord, provider_model: str, refs: tuple[ReferenceImage, ...], *, provider: str | None = None
) -> JobSpec:
    """The job for ``provider`` (its name: the request's ``provider_options`` for it apply)."""
    spec = job.spec
    if provider is not None and spec.provider_options is not msgspec.UNSET:
        spec = msgspec.structs.replace(spec, provider_params=spec.provider_params_for(provider))
    return JobSpec.of(spec, job_id=job.id, provider_model=provider_model, deadline_at=job.deadline_at, references=refs)


def assets_of(w: WorkerContext, job: JobRecord) -> AssetReader:
    """Reads the assets the job's references name: the job owner's own, from the worker's store."""
    return AssetReader(w.db, w.blobs, job.owner_id)


def files_of(w: WorkerContext, job: JobRecord) -> FileReader:
    """Reads the uploads the job's references name: the job owner's own, from the worker's store."""
    return FileReader(w.db, w.blobs, job.owner_id)


def own_keys(job: JobRecord, box: SecretBox) -> dict[str, Secret]:
    """The owner's own provider keys for this job (BYOK), if it brought any; sealed at rest."""
    return open_keys(box, job.id, None if job.byok is None else job.byok.reveal())


async def fetch_references(
    http: httpx.AsyncClient,
    references: Sequence[Reference],
    settings: Settings,
    *,
    assets: AssetReader | None = None,
    files: FileReader | None = None,
) -> tuple[ReferenceImage, ...]:
    """Every input reference fetched and checked (SSRF guard, type, size, pixel size) before any provider
    sees it; one naming an asset or an upload is read from the store through ``assets`` or ``files``.
    A picture too large to decode raises ``ImageDecodeError`` naming the input; a source that cannot be
    used, ``BlockedURL``."""
    try:
        refs = tuple([await _fetch(http, ref, settings, assets, files) for ref in references])
    except ValueError as exc:  # a redirect to a URL that does not parse: no retry can fix it
        if isinstance(exc, BlockedURL):
            raise
        raise BlockedURL(f"the reference URL redirected to a URL that does not parse ({exc})") from exc
    for i, ref in enumerate(refs):
        info = sniff(ref.data) if ref.kind == "image" else None
        if info is not None and (why := oversize(info)) is not None:
            raise ImageDecodeError(f"input_references[{i}].image_url.url ({ref.role}): {why}")
    return refs


async def _fetch(
    http: httpx.AsyncClient,
    ref: Reference,
    settings: Settings,
    assets: AssetReader | None,
    files: FileReader | None = None,
) -> ReferenceImage:
    limit = settings.reference_max_bytes
    if ref.file is not None:
        if files is None:
            raise BlockedURL(f"the file {ref.file} cannot be read here")
        try:  # an upload was already held to the upload cap, the larger of the two
            data, mime = await files.read(ref.file, max(limit, settings.upload_max_bytes))
        except (LookupError, ValueError) as exc:
            raise BlockedURL(str(exc)) from exc
        return ReferenceImage(ref.role, "", data, mime, kind=ref.kind, file=ref.file)
    if ref.asset is not None:
        if assets is None:
            raise BlockedURL(f"the asset {ref.asset} cannot be read here")
        try:
            data, mime = await assets.read(ref.asset, limit)
        except (LookupError, ValueError) as exc:
            raise BlockedURL(str(exc)) from exc
        return ReferenceImage(ref.role, "", data, mime, kind=ref.kind, asset=ref.asset)
    types, what = ACCEPTED[ref.kind]
    got = await fetch_image(
        http, ref.role, ref.url, allow_private=settings.allow_private_urls, max_bytes=limit, types=types, what=what
    )
    return got if ref.kind == "image" else msgspec.structs.replace(got, kind=ref.kind)
