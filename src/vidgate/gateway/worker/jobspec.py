"""A job made into what a provider sees: its references fetched and checked, its own keys opened, and
the request's options for that provider over its ``provider_params``.

An input video or audio is measured once fetched (PyAV reads its length from the container) where the
model bounds its length or the caller stated it; one out of bounds, or more than half a second from
what was stated, fails the job as an undecodable image does: the input's fault, so at once, the hold
voided.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Sequence
from typing import TYPE_CHECKING

import av
import httpx
import msgspec

from vidgate.gateway.catalog.catalog import Model
from vidgate.gateway.catalog.operations import describe_input, input_checks
from vidgate.gateway.catalog.references import MIME_TYPES
from vidgate.gateway.jobs.assets import AssetReader
from vidgate.gateway.jobs.files import FileReader
from vidgate.gateway.jobs.records import JobRecord
from vidgate.gateway.jobs.spec import Reference, VideoSpec
from vidgate.gateway.net import BlockedURL, fetch_image
from vidgate.gateway.providers.base import JobSpec, Origin, ReferenceImage
from vidgate.gateway.render.image import ImageDecodeError
from vidgate.gateway.render.imagesize import oversize, sniff
from vidgate.gateway.secret import Secret, SecretBox, open_keys
from vidgate.gateway.settings import Settings
from vidgate.gateway.worker.input_links import InputLinks, expiry

if TYPE_CHECKING:
    from vidgate.gateway.worker.context import WorkerContext

# What a fetched reference of each kind may be, as its server names it, and the refusal's words.
ACCEPTED = {
    "image": (MIME_TYPES["image"], "an image (png, jpeg, webp, gif)"),
    "video": (MIME_TYPES["video"], "a video (mp4, webm, quicktime)"),
    "audio": (MIME_TYPES["audio"], "an audio file (mpeg, wav, mp4, aac, ogg, flac)"),
}


class InputMediaError(ImageDecodeError):
    """An input video or audio the job cannot use (its length out of bounds or not as stated, or no
    length to be read): the input's own fault, failed at once like an image that cannot be decoded."""


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


def links_of(w: WorkerContext, job: JobRecord) -> InputLinks:
    """Makes links to the gateway's copy of the job's uploads and earlier outputs, expiring with the job."""
    s = w.settings
    expires = expiry(job.created_at, job.deadline_at, s.input_link_ttl_seconds)
    return InputLinks(s.public_url, s.signing_secret, w.blobs, expires)


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
    links: InputLinks | None = None,
) -> tuple[ReferenceImage, ...]:
    """Every input reference fetched and checked (SSRF guard, type, size, pixel size) before any provider
    sees it; one naming an asset or an upload is read from the store through ``assets`` or ``files``,
    and given a link to the gateway's copy through ``links`` where one can be given (``input_links``).
    A picture too large to decode raises ``ImageDecodeError`` naming the input; a source that cannot be
    used, ``BlockedURL``."""
    try:
        refs = tuple([await _fetch(http, ref, settings, assets, files, links) for ref in references])
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
    links: InputLinks | None = None,
) -> ReferenceImage:
    limit = settings.reference_max_bytes
    if ref.file is not None:
        if files is None:
            raise BlockedURL(f"the file {ref.file} cannot be read here")
        try:  # an upload was already held to the upload cap, the larger of the two
            data, found = await files.open(ref.file, max(limit, settings.upload_max_bytes))
        except (LookupError, ValueError) as exc:
            raise BlockedURL(str(exc)) from exc
        url = "" if links is None else await links.file(found.id, found.key)
        return ReferenceImage(ref.role, url, data, found.mime_type, kind=ref.kind, file=ref.file)
    if ref.asset is not None:
        if assets is None:
            raise BlockedURL(f"the asset {ref.asset} cannot be read here")
        try:
            data, asset = await assets.open(ref.asset, limit)
        except (LookupError, ValueError) as exc:
            raise BlockedURL(str(exc)) from exc
        made_by = await assets.made_by(asset)
        origin = None if made_by is None else Origin(*made_by)
        url = "" if links is None else await links.output(asset.job_id, asset.index, asset.key)
        return ReferenceImage(ref.role, url, data, asset.mime_type, kind=ref.kind, asset=ref.asset, origin=origin)
    types, what = ACCEPTED[ref.kind]
    got = await fetch_image(
        http, ref.role, ref.url, allow_private=settings.allow_private_urls, max_bytes=limit, types=types, what=what
    )
    return got if ref.kind == "image" else msgspec.structs.replace(got, kind=ref.kind)


async def fetch_job_references(w: WorkerContext, job: JobRecord) -> tuple[ReferenceImage, ...]:
    """The job's references fetched (``fetch_references``), its input media's lengths checked."""
    refs = await fetch_references(
        w.http,
        job.spec.references,
        w.settings,
        assets=assets_of(w, job),
        files=files_of(w, job),
        links=links_of(w, job),
    )
    model = w.catalog.by_id.get(job.model)
    if model is not None:
        await check_lengths(job.spec, model, refs)
    return refs


async def check_lengths(spec: VideoSpec, model: Model, refs: Sequence[ReferenceImage]) -> None:
    """Measure each input video or audio that has a length to be checked; ``InputMediaError`` on the
    first that fails it."""
    for check in input_checks(spec, model.input_video_seconds, model.input_audio_seconds):
        what = describe_input(check.index, check.ref)
        measured = await asyncio.to_thread(media_seconds, refs[check.index].data)
        if measured is None:
            raise InputMediaError(f"{what}: its length cannot be read; send an {_FILES[check.ref.kind]}")
        if (why := check.problem(measured, model.id)) is not None:
            raise InputMediaError(why)


_FILES = {"video": "mp4, webm or quicktime video", "audio": "mpeg, wav, mp4, aac, ogg or flac audio file"}


def media_seconds(data: bytes) -> float | None:
    """How long a video or audio file lasts, from its container (or its first stream); None when PyAV
    cannot open it or it states no length. Blocking: run it off the event loop."""
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            if container.duration is not None:
                return round(container.duration / av.time_base, 3)
            stream = next(iter(container.streams.video or container.streams.audio), None)
            if stream is not None and stream.duration is not None and stream.time_base is not None:
                return round(float(stream.duration * stream.time_base), 3)
    except (av.error.FFmpegError, ValueError):
        return None
    return None
