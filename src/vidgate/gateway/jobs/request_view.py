"""A job's stored spec as its owner asked for it (``GET /v1/videos/{id}/request``), with nothing secret.

The spec keeps what the job needs to run, some of it secret: the webhook (its secret sealed or, on
old rows, in the clear) and ``provider_params`` / ``provider_options`` values, which callers use to
pass upstream credentials. Those are left out, or named without their values; a ``data:`` input is
described by its type and size, so the answer stays small and never echoes the bytes. An input
that is an earlier output names the job that made it (``job_id``): a ``vid_…`` id is that job
itself, and an ``ast_…`` id's job is looked up by the caller (``asset_jobs``), as this stays pure.
"""

from __future__ import annotations

import binascii
from base64 import b64decode
from collections.abc import Mapping
from urllib.parse import unquote_to_bytes

from msgspec import UNSET

from vidgate.gateway.jobs.assets import JOB_PREFIX
from vidgate.gateway.jobs.spec import Reference, VideoSpec
from vidgate.types import InlineData, RequestReference, RequestRouting, VideoRequest


def inline_data(url: str) -> InlineData:
    """A ``data:`` URL's media type and decoded size (an undecodable payload counts as its text)."""
    header, _, payload = url[len("data:") :].partition(",")
    params = header.split(";")
    mime = params[0].strip() or "text/plain"
    if "base64" in (p.strip().lower() for p in params[1:]):
        try:
            size = len(b64decode(payload + "=" * (-len(payload) % 4), validate=False))
        except (binascii.Error, ValueError):
            size = len(payload)
    else:
        size = len(unquote_to_bytes(payload))
    return InlineData(mime_type=mime, bytes=size)


def request_reference(ref: Reference, asset_jobs: Mapping[str, str] | None = None) -> RequestReference:
    """One stored input by its source: a URL, an inline medium's description, an upload or an asset
    (with the job that made it, where known: ``asset_jobs`` maps asset ids to their jobs)."""
    out = RequestReference(role=ref.role, kind=ref.kind)
    if ref.file:
        out.file_id = ref.file
    elif ref.asset:
        out.asset_id = ref.asset
        if ref.asset.startswith(JOB_PREFIX):
            out.job_id = ref.asset
        elif asset_jobs and (made_by := asset_jobs.get(ref.asset)):
            out.job_id = made_by
    elif ref.url[:5].lower() == "data:":
        out.data = inline_data(ref.url)
    else:
        out.url = ref.url
    return out


def asset_inputs(spec: VideoSpec) -> list[str]:
    """The ids of the spec's inputs that are outputs named by asset id (not by their job's id), once each."""
    return list(
        dict.fromkeys(
            ref.asset for ref in spec.references if ref.asset and not ref.file and not ref.asset.startswith(JOB_PREFIX)
        )
    )


def video_request(job_id: str, spec: VideoSpec, asset_jobs: Mapping[str, str] | None = None) -> VideoRequest:
    """``spec`` in the create body's names, defaults filled in, secrets left out; ``asset_jobs`` says
    which job made each ``asset_inputs`` id still held."""
    r, x = spec.routing, spec.extras
    routing = RequestRouting(
        include_alpha=False if r.include_alpha is UNSET else r.include_alpha,
        allow_fallbacks=True if r.allow_fallbacks is UNSET else r.allow_fallbacks,
        order=UNSET if r.order is UNSET else list(r.order),
        only=UNSET if r.only is UNSET else list(r.only),
        ignore=UNSET if r.ignore is UNSET else list(r.ignore),
    )
    options = spec.provider_options
    return VideoRequest(
        id=job_id,
        model=spec.model,
        prompt=spec.prompt,
        duration=spec.duration,
        size=spec.size,
        generate_audio=spec.audio,
        sample_count=spec.sample_count,
        output_access=spec.output_access,
        provider=routing,
        input_references=[request_reference(ref, asset_jobs) for ref in spec.references],
        provider_params_keys=sorted(spec.provider_params),
        resolution=spec.resolution,
        aspect_ratio=spec.aspect_ratio,
        seed=spec.seed,
        negative_prompt=spec.negative_prompt,
        operation=spec.operation,
        enhance_prompt=x.enhance_prompt,
        compression_quality=x.compression_quality,
        person_generation=x.person_generation,
        resize_mode=x.resize_mode,
        provider_options_keys=UNSET if options is UNSET else {name: sorted(o) for name, o in options.items()},
        input_audio_duration=spec.input_audio_duration,
        input_video_duration=spec.input_video_duration,
    )
