"""Google Veo on Vertex AI: ``predictLongRunning``, polled with ``fetchPredictOperation``.

Wire format per providers.md §2.2. The request body is the Gemini one (built by the shared helpers
in ``google.py``) plus the Vertex-only ``seed``, ``generateAudio``, ``resizeMode`` and
``storageUri``. Auth is an OAuth2 Bearer token: from Google credentials (``config.extra
["credentials"]``: a service-account JSON, the JSON itself or a path to it, or ``default`` for
application default credentials), refreshed before it expires, or a fixed access token
(``config.api_key``) for those who mint their own. The project and location come from
``config.extra`` (``project``, ``location``); the project falls back to the credentials' own.

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

import asyncio
import base64
import binascii
import json
import re
import threading
import time
from collections.abc import AsyncIterator
from datetime import UTC
from pathlib import Path
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
    is_veo2,
    operation_error_code,
    operation_failed,
    veo_instance,
    veo_parameters,
)
from vidgate.gateway.providers.http import make_client, request, request_id_of, require, stream_url
from vidgate.gateway.providers.mapping import unsupported
from vidgate.gateway.providers.reconcile import find_without_lookup
from vidgate.gateway.secret import Secret, reveal

DEFAULT_LOCATION = "us-central1"
DEFAULT_STORAGE_BASE_URL = "https://storage.googleapis.com"
API_VERSION = "v1"  # litellm uses v1, the python SDK v1beta1; both serve these methods
RESIZE_MODES = ("pad", "crop")
CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
APPLICATION_DEFAULT = "default"
# A token is replaced this long before it expires, so no call goes out with one about to lapse.
REFRESH_MARGIN_SECONDS = 300.0
_JWT = re.compile(r"eyJ[\w-]*\.[\w-]*\.[\w-]*")


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


class TokenError(Exception):
    """No access token could be had; the message names why and never holds a credential."""


class AccessTokens:
    """Bearer tokens for Vertex: a fixed one (``api_key``, when set), or ones google-auth mints from
    Google credentials.

    google-auth refreshes synchronously (an HTTPS call to the credentials' token endpoint), so a
    refresh runs in a worker thread, one at a time; the token is kept until a few minutes before it
    expires. Credentials and tokens are held as ``Secret`` and never put in a message.
    """

    def __init__(self, config: ProviderConfig) -> None:
        # A fixed token wins: it is also how a request brings its owner's own key.
        fixed = config.revealed_api_key()
        setting = "" if fixed else reveal(config.extra.get("credentials")).strip()
        self._fixed = Secret(fixed) if fixed or not setting else None
        self._setting = Secret(setting)
        self._timeout = config.timeout_seconds
        self._lock = threading.Lock()
        self._credentials: Any = None
        self._token: Secret | None = None
        self._expires_at = 0.0
        self.project: str | None = None
        self.problem: str | None = None
        if setting and setting != APPLICATION_DEFAULT:
            # A key file is read (and checked) once, at start; its project is known from then on.
            try:
                self._credentials, self.project = self._load()
            except TokenError as exc:
                self.problem = str(exc)

    def __repr__(self) -> str:
        return f"AccessTokens(fixed={self._fixed is not None}, project={self.project!r})"

    def _load(self) -> tuple[Any, str | None]:
        import google.auth
        from google.auth.exceptions import GoogleAuthError
        from google.oauth2 import service_account

        setting = self._setting.reveal()
        try:
            if setting == APPLICATION_DEFAULT:
                return google.auth.default(scopes=[CLOUD_PLATFORM_SCOPE])
            text = setting if setting.startswith("{") else Path(setting).read_text(encoding="utf-8")
            info = json.loads(text)
            if not isinstance(info, dict) or info.get("type") != "service_account":
                raise TokenError("google-vertex credentials must be a service-account key file, or 'default'")
            project = info.get("project_id") if isinstance(info.get("project_id"), str) else None
            return service_account.Credentials.from_service_account_info(info, scopes=[CLOUD_PLATFORM_SCOPE]), project
        except (GoogleAuthError, OSError, ValueError) as exc:
            raise TokenError(f"google-vertex credentials could not be loaded ({type(exc).__name__})") from None

    def _fresh(self) -> bool:
        return self._token is not None and self._expires_at - time.time() > REFRESH_MARGIN_SECONDS

    def _refresh(self) -> None:
        """In a worker thread: load the credentials if need be and mint a token, unless another
        thread has just done so."""
        from google.auth.exceptions import GoogleAuthError

        with self._lock:
            if self._fresh():
                return
            if self._credentials is None:
                self._credentials, project = self._load()
                self.project = self.project or project
            try:
                self._credentials.refresh(_TimedRequest(self._timeout))
            except GoogleAuthError as exc:
                raise TokenError(f"google-vertex could not refresh its access token: {_reason(exc)}") from None
            expiry = self._credentials.expiry  # naive UTC, per google-auth
            self._expires_at = expiry.replace(tzinfo=UTC).timestamp() if expiry else time.time()
            self._token = Secret(self._credentials.token or "")

    async def headers(self) -> dict[str, str]:
        """The Authorization header of the next call; raises ``TokenError`` when there is no token."""
        if self._fixed is not None:
            return {"Authorization": f"Bearer {self._fixed.reveal()}"}
        if self.problem is not None:
            raise TokenError(self.problem)
        if not self._fresh():
            await asyncio.to_thread(self._refresh)
        assert self._token is not None
        return {"Authorization": f"Bearer {self._token.reveal()}"}


def _reason(exc: Exception) -> str:
    """A refusal's reason as the token endpoint worded it, short, with anything token-like cut out."""
    text = exc.args[0] if exc.args and isinstance(exc.args[0], str) else ""
    return _JWT.sub("[token]", text)[:200] or type(exc).__name__


class _TimedRequest:
    """google-auth's requests transport with the provider's timeout, never the proxy environment."""

    def __init__(self, timeout: float) -> None:
        import requests
        from google.auth.transport.requests import Request

        session = requests.Session()
        session.trust_env = False
        self._request = Request(session)
        self._timeout = timeout

    def __call__(self, url: str, method: str = "GET", body: Any = None, headers: Any = None, **kw: Any) -> Any:
        kw.setdefault("timeout", self._timeout)
        return self._request(url, method=method, body=body, headers=headers, **kw)


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
        self._project = str(extra["project"]) if extra.get("project") else None
        self.location = str(extra.get("location") or DEFAULT_LOCATION)
        self.storage_base_url = str(extra.get("storage_base_url") or DEFAULT_STORAGE_BASE_URL).rstrip("/")
        self.storage_uri = str(extra["storage_uri"]).rstrip("/") if extra.get("storage_uri") else None
        # Sent per call (and with each gs:// download, which goes to Google's storage host) rather
        # than as a client default, so no other URL can ever receive the token.
        self.tokens = AccessTokens(config)
        self._client = make_client(config, default_base_url=default_base_url(self.location))

    @property
    def project(self) -> str | None:
        return self._project or self.tokens.project

    async def _auth(self, phase: str) -> dict[str, str]:
        try:
            return await self.tokens.headers()
        except TokenError as exc:
            if phase == "submit":
                raise Rejected(str(exc), retryable=True, code="provider_misconfigured") from None
            raise PollFailed(str(exc), retryable=True, code="provider_auth") from None

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
        ``storageUri``). Our ``compression_quality`` is a number and Vertex's an
        ``OPTIMIZED``/``LOSSLESS`` enum, so a job giving it is refused rather than guessed at.
        """
        if job.compression_quality is not None:
            raise unsupported("google-vertex takes compressionQuality as OPTIMIZED or LOSSLESS (provider_params)")
        instance = veo_instance(job, self.name, vertex=True)
        mapped = veo_parameters(job, self.name)
        if not is_veo2(job.provider_model):
            # Veo 3.x makes audio on request; Veo 2 has no audio and no such parameter.
            mapped["generateAudio"] = job.audio
        elif job.audio:
            raise unsupported(f"{job.provider_model} cannot generate audio")
        if job.seed is not None:
            mapped["seed"] = job.seed
        if job.resize_mode is not None:
            if job.resize_mode not in RESIZE_MODES:
                raise unsupported(f"resize_mode must be one of {', '.join(RESIZE_MODES)} on Vertex")
            mapped["resizeMode"] = job.resize_mode
        defaults: dict[str, Any] = {}
        if self.storage_uri:
            defaults["storageUri"] = f"{self.storage_uri}/{job.job_id}/"
        return {"instances": [instance], "parameters": {**defaults, **dict(job.provider_params), **mapped}}

    async def submit(self, job: JobSpec) -> Accepted:
        body = self.build_request(job)
        auth = await self._auth("submit")  # before the path: the project may be the credentials'
        path = self.model_path(job.provider_model)
        data, response = await request(
            self._client,
            "POST",
            f"/{quote(path, safe='/')}:predictLongRunning",
            phase="submit",
            json=body,
            headers=auth,
        )
        name = require(data, "name", phase="submit")
        if not isinstance(name, str) or "/operations/" not in name:
            rid = request_id_of(response)
            raise UnknownOutcome("vertex returned no operation name", retryable=True, request_id=rid)
        return Accepted(native_id=name, request_id=request_id_of(response))

    async def find(self, job: JobSpec, since: float | None = None) -> Accepted | None:
        """Vertex offers no way to look a job up."""

        def build() -> object:
            if self._project is not None or self.tokens.project is not None:
                self.model_path(job.provider_model)
            return self.build_request(job)

        return find_without_lookup(self.name, build)

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
            headers=await self._auth("poll"),
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
        """Inline base64 videos become bytes; ``gs://`` ones a storage download (its token added then)."""
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
                outputs.append(UpstreamOutput(index=index, url=url, mime_type=mime))
        return tuple(outputs)

    async def open_output(self, out: UpstreamOutput) -> AsyncIterator[bytes]:
        if out.data is not None:
            yield out.data
            return
        # A token taken now, not at the poll: a download retried later still gets a live one.
        headers = {**out.headers, **await self._auth("download")}
        async for chunk in stream_url(self._client, out.url, headers):
            yield chunk

    async def aclose(self) -> None:
        await self._client.aclose()
