"""Google Veo on Vertex AI: ``predictLongRunning``, polled with ``fetchPredictOperation``.

Wire format per providers.md §2.2. The request body is the Gemini one (built by the shared helpers
in ``google.py``) plus the Vertex-only ``generateAudio``, ``resizeMode`` and ``storageUri``. Auth
is an OAuth2 access token (``config.api_key``) as a Bearer header; the project and location come
from ``config.extra`` (``project``, ``location``).

Outputs come back inline (``bytesBase64Encoded``) unless a ``storageUri`` was set, in which case
each video is a ``gs://`` object, fetched through the Cloud Storage JSON API
(``{storage_base_url}/storage/v1/b/{bucket}/o/{object}?alt=media``) with the same token: Google's
own storage host, never a third party. ``config.extra["storage_base_url"]`` overrides that host
(tests point it at the fake) and ``config.extra["storage_uri"]`` sets a ``gs://`` prefix for every
job (each job writes under ``{prefix}/{job_id}/``).

Vertex documents no idempotency key and no supported cancel for Veo operations, so neither is used.
No call lists Veo operations either (top-level ``labels`` only attribute billing), so after a lost
create answer nothing can find the operation again: ``reconcile`` is ``none``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

from vidgate.gateway.providers.base import (
    Accepted,
    JobSpec,
    PollFailed,
    ProviderConfig,
    Rejected,
    UnknownOutcome,
    Upstream,
    UpstreamOutput,
)
from vidgate.gateway.providers.cancel import CannotCancel
from vidgate.gateway.providers.google import (
    operation_error_code,
    operation_failed,
    veo_instance,
    veo_parameters,
)
from vidgate.gateway.providers.http import make_client, request, request_id_of, require, stream_url
from vidgate.gateway.providers.mapping import unsupported
from vidgate.gateway.providers.reconcile import find_without_lookup

DEFAULT_LOCATION = "us-central1"
DEFAULT_STORAGE_BASE_URL = "https://storage.googleapis.com"
API_VERSION = "v1"  # litellm uses v1, the python SDK v1beta1; both serve these methods
RESIZE_MODES = ("pad", "crop")


def default_base_url(location: str) -> str:
    host = "aiplatform.googleapis.com" if location == "global" else f"{location}-aiplatform.googleapis.com"
    return f"https://{host}/{API_VERSION}"


def storage_download_url(gcs_uri: str, base: str = DEFAULT_STORAGE_BASE_URL) -> str:
    """``gs://bucket/a/b.mp4`` → the JSON API media URL of that object."""
    if not gcs_uri.startswith("gs://"):
        raise PollFailed(f"not a gs:// URI: {gcs_uri!r}", retryable=False)
    bucket, _, name = gcs_uri[5:].partition("/")
    if not bucket or not name:
        raise PollFailed(f"gs:// URI without bucket or object: {gcs_uri!r}", retryable=False)
    return f"{base.rstrip('/')}/storage/v1/b/{quote(bucket, safe='')}/o/{quote(name, safe='')}?alt=media"


class VertexProvider(CannotCancel):
    """Adapter for Veo through Vertex AI (OAuth bearer token, project-scoped model paths).

    Neither §2.1 nor §2.2 documents a supported cancel for Veo operations; a generic
    google.longrunning ``:cancel`` is [unverified], so we do not rely on it.
    """

    name = "google-vertex"
    reconcile = "none"

    def __init__(self, config: ProviderConfig) -> None:
        self.config = config
        extra = config.extra
        self.project = str(extra["project"]) if extra.get("project") else None
        self.location = str(extra.get("location") or DEFAULT_LOCATION)
        self.storage_base_url = str(extra.get("storage_base_url") or DEFAULT_STORAGE_BASE_URL).rstrip("/")
        self.storage_uri = str(extra["storage_uri"]).rstrip("/") if extra.get("storage_uri") else None
        # Sent per call (and with each gs:// download, which goes to Google's storage host) rather
        # than as a client default, so no other URL can ever receive the token.
        self._auth = {"Authorization": f"Bearer {config.revealed_api_key()}"}
        self._client = make_client(config, default_base_url=default_base_url(self.location))

    def model_path(self, provider_model: str) -> str:
        if not self.project:
            raise Rejected(
                "google-vertex needs a project (set providers.google-vertex.project)",
                retryable=True,
                code="provider_misconfigured",
            )
        model = provider_model.removeprefix("models/").removeprefix("publishers/google/models/")
        return f"projects/{self.project}/locations/{self.location}/publishers/google/models/{model}"

    def build_request(self, job: JobSpec) -> dict[str, Any]:
        """``{instances, parameters}``; mapped fields win over ``provider_params``.

        ``provider_params`` land in ``parameters`` (e.g. ``fps``, ``compressionQuality``,
        ``storageUri``, which this mapping does not set from our fields: our ``compression_quality``
        is a number and Vertex's is an ``OPTIMIZED``/``LOSSLESS`` enum).
        """
        instance = veo_instance(job, self.name)
        mapped = veo_parameters(job)
        if not job.provider_model.startswith("veo-2"):
            # Veo 3.x makes audio on request; Veo 2 has no audio and no such parameter.
            mapped["generateAudio"] = job.audio
        elif job.audio:
            raise unsupported(f"{job.provider_model} cannot generate audio")
        if job.resize_mode is not None:
            if job.resize_mode not in RESIZE_MODES:
                raise unsupported(f"resize_mode must be one of {', '.join(RESIZE_MODES)} on Vertex")
            mapped["resizeMode"] = job.resize_mode
        defaults: dict[str, Any] = {}
        if self.storage_uri:
            defaults["storageUri"] = f"{self.storage_uri}/{job.job_id}/"
        return {"instances": [instance], "parameters": {**defaults, **dict(job.provider_params), **mapped}}

    async def submit(self, job: JobSpec) -> Accepted:
        path = self.model_path(job.provider_model)
        body = self.build_request(job)
        data, response = await request(
            self._client,
            "POST",
            f"/{quote(path, safe='/')}:predictLongRunning",
            phase="submit",
            json=body,
            headers=self._auth,
        )
        name = require(data, "name", phase="submit")
        if not isinstance(name, str) or "/operations/" not in name:
            rid = request_id_of(response)
            raise UnknownOutcome("vertex returned no operation name", retryable=True, request_id=rid)
        return Accepted(native_id=name, request_id=request_id_of(response))

    async def find(self, job: JobSpec, since: float | None = None) -> Accepted | None:
        """Vertex offers no way to look a job up."""
        return find_without_lookup(self.name, lambda: (self.model_path(job.provider_model), self.build_request(job)))

    async def poll(self, job: JobSpec, native_id: str) -> Upstream:
        # The SDK splits the operation name at /operations/ to find the model to POST to.
        model_path, sep, _ = native_id.partition("/operations/")
        if not sep or not model_path:
            raise PollFailed(f"not a Vertex operation name: {native_id!r}", retryable=False)
        body, response = await request(
            self._client,
            "POST",
            f"/{quote(model_path, safe='/')}:fetchPredictOperation",
            phase="poll",
            expect=(200,),
            json={"operationName": native_id},
            headers=self._auth,
        )
        if not isinstance(body, dict):
            raise PollFailed("vertex sent a non-object operation", retryable=True)
        if body.get("done") is not True:  # absent ``done`` means still running
            return Upstream(status="processing")
        rid = request_id_of(response)
        if isinstance(err := body.get("error"), dict):
            return operation_failed(operation_error_code(err), str(err.get("message") or "operation failed"), rid)
        result = body.get("response")
        if not isinstance(result, dict):
            return operation_failed("no_output", "operation finished without a video response", rid)
        outputs = self._outputs(result.get("videos"))
        if outputs:
            return Upstream(status="completed", progress=100, outputs=outputs)
        filtered = result.get("raiMediaFilteredCount")
        reasons = [r for r in result.get("raiMediaFilteredReasons") or () if isinstance(r, str)]
        if reasons or (isinstance(filtered, int) and filtered > 0):
            message = "; ".join(reasons) or "all generated videos were blocked by safety filters"
            return operation_failed("moderation_blocked", message, rid)
        return operation_failed("no_output", "operation finished without any generated video", rid)

    def _outputs(self, videos: Any) -> tuple[UpstreamOutput, ...]:
        """Inline base64 videos become bytes; ``gs://`` ones a storage download with the token."""
        outputs: list[UpstreamOutput] = []
        for video in videos if isinstance(videos, list) else ():
            if not isinstance(video, dict):
                continue
            mime = video["mimeType"] if isinstance(video.get("mimeType"), str) else "video/mp4"
            index = len(outputs)
            if isinstance(encoded := video.get("bytesBase64Encoded"), str) and encoded:
                try:
                    data = base64.b64decode(encoded, validate=True)
                except (binascii.Error, ValueError) as exc:
                    raise PollFailed("vertex sent undecodable inline video", retryable=True) from exc
                outputs.append(UpstreamOutput(index=index, url="", mime_type=mime, data=data))
            elif isinstance(uri := video.get("gcsUri"), str) and uri:
                url = storage_download_url(uri, self.storage_base_url)
                outputs.append(UpstreamOutput(index=index, url=url, mime_type=mime, headers=dict(self._auth)))
        return tuple(outputs)

    async def open_output(self, out: UpstreamOutput) -> AsyncIterator[bytes]:
        if out.data is not None:
            yield out.data
            return
        async for chunk in stream_url(self._client, out.url, out.headers):
            yield chunk

    async def aclose(self) -> None:
        await self._client.aclose()
