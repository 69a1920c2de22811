"""The contract between the worker and one upstream: the only types an adapter needs to know.

A remote adapter maps our ``JobSpec`` (the job's ``VideoSpec`` with its context) onto its
upstream's wire format and the upstream's answers back onto ``Upstream``. A definite refusal
before ``Accepted`` may fail over to another provider (``Rejected(retryable=True)``); a create
whose answer was lost (``UnknownOutcome``) and everything after ``Accepted`` belong to that
provider.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, TypeGuard, runtime_checkable

import msgspec

from vidgate.gateway.jobs.spec import Reference, VideoSpec
from vidgate.gateway.secret import Secret, reveal, secret

UpstreamStatus = Literal["queued", "processing", "completed", "failed", "cancelled"]


class Origin(msgspec.Struct, frozen=True):
    """The job that made an input named as one of the owner's outputs: which provider ran it, and that
    provider's own id for it. An upstream that extends only a video it made takes that id, not bytes."""

    provider: str
    native_id: str


class ReferenceImage(Reference, frozen=True):
    """An input reference already fetched and checked by the gateway; ``origin`` is set for an asset
    whose job is known."""

    data: bytes
    mime_type: str
    origin: Origin | None = None

    def data_url(self) -> str:
        import base64

        return f"data:{self.mime_type};base64,{base64.b64encode(self.data).decode()}"


class JobSpec(VideoSpec, frozen=True, kw_only=True):
    """A job as a provider sees it: its spec, with the job's context and its references fetched.

    The fields only some models take (``enhance_prompt`` and the like) are read from the spec's
    ``extras`` unless given here.
    """

    job_id: str
    provider_model: str
    deadline_at: int | None = None
    references: tuple[ReferenceImage, ...] = ()
    enhance_prompt: bool | None = None
    person_generation: str | None = None
    compression_quality: int | None = None
    resize_mode: str | None = None

    def __post_init__(self) -> None:
        for name in self.extras.names():
            if getattr(self, name) is None:
                msgspec.structs.force_setattr(self, name, getattr(self.extras, name))

    @classmethod
    def of(
        cls,
        spec: VideoSpec,
        *,
        job_id: str,
        provider_model: str,
        deadline_at: int | None,
        references: tuple[ReferenceImage, ...],
    ) -> JobSpec:
        fields = msgspec.structs.asdict(spec)
        fields["references"] = references
        return cls(**fields, job_id=job_id, provider_model=provider_model, deadline_at=deadline_at)

    def reference(self, role: str) -> ReferenceImage | None:
        return next((r for r in self.references if r.role == role), None)


@dataclass(frozen=True, slots=True)
class Accepted:
    native_id: str
    eta_seconds: float | None = None
    request_id: str | None = None
    note: str | None = None  # what the adapter changed to make the job fit, for the accepted attempt


@dataclass(frozen=True, slots=True)
class UpstreamOutput:
    """Where one output's bytes can be fetched; ``headers`` carry any auth the fetch needs."""

    index: int
    url: str
    mime_type: str = "video/mp4"
    headers: Mapping[str, str] = field(default_factory=dict)
    data: bytes | None = None


@dataclass(frozen=True, slots=True)
class UpstreamError:
    code: str
    message: str
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class Upstream:
    """One poll's answer, already in our vocabulary."""

    status: UpstreamStatus
    progress: int | None = None
    eta_seconds: float | None = None
    outputs: tuple[UpstreamOutput, ...] = ()
    error: UpstreamError | None = None
    seconds: float | None = None


class ProviderError(Exception):
    """An upstream answered with an error; ``retryable`` says whether trying again can help.

    ``retry_after`` is the upstream's own ``Retry-After`` in seconds, when it sent one.
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        status_code: int | None = None,
        request_id: str | None = None,
        code: str = "upstream_error",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.status_code = status_code
        self.request_id = request_id
        self.code = code
        self.retry_after = retry_after


class Rejected(ProviderError):
    """Submit did not create an upstream job; with ``retryable`` routing tries the next provider."""


class UnknownOutcome(ProviderError):
    """A create was sent but its answer was lost (timeout, reset, garbled 2xx): the job may exist.

    Also what ``find`` raises when it cannot tell. Not a rejection: the worker reconciles with
    ``find`` before it sends the job anywhere again, and never fails over on it.
    """


class PollFailed(ProviderError):
    """A poll could not be answered (network, 5xx, 429, malformed body); the job is kept."""


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    """One ``[providers.NAME]`` table of the settings; its credentials are held as ``Secret``."""

    name: str
    enabled: bool = True
    api_key: Secret | None = None
    base_url: str | None = None
    alpha: bool = False
    timeout_seconds: float = 30.0
    connect_timeout_seconds: float = 5.0
    max_concurrency: int = 16
    poll_interval_seconds: float = 5.0
    # How long the upstream keeps a finished job's outputs: storing them is retried no longer than this.
    output_ttl_seconds: float = 3600.0
    # Failed calls in a row (across every worker) that open the provider's circuit, and for how long.
    circuit_failures: int = 5
    circuit_cooldown_seconds: float = 30.0
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "api_key", secret(self.api_key))
        hidden = {k: Secret(v) for k, v in self.extra.items() if isinstance(v, str) and _SECRET_EXTRA.search(k)}
        if hidden:  # a secret in an adapter's own settings (kling's secret_key)
            object.__setattr__(self, "extra", {**self.extra, **hidden})

    def revealed_api_key(self) -> str:
        """The API key itself, for the request header that sends it ("" when there is none)."""
        return reveal(self.api_key)


_SECRET_EXTRA = re.compile(r"secret|password|token|credential", re.IGNORECASE)


Reconcile = Literal["lookup", "list", "none"]
"""How ``find`` learns whether a create whose answer was lost made the job upstream.

``lookup``: read back by a marker the create carried (Kling's ``external_task_id``); exact.
``list``: scan the upstream's recent jobs for one matching what it echoes of our request; exact
when the echo is (it answers "unknown" rather than guess between look-alikes).
``none``: the upstream offers no way; ``find`` always raises ``UnknownOutcome``.
"""


@runtime_checkable
class RemoteProvider(Protocol):
    """An upstream reached over HTTP: submit once, then poll on the worker's schedule."""

    name: str
    cancellable: bool
    reconcile: Reconcile

    async def submit(self, job: JobSpec) -> Accepted: ...

    async def find(self, job: JobSpec, since: float | None = None) -> Accepted | None:
        """After ``UnknownOutcome`` on submit: the job's ``Accepted`` if the upstream holds it, None if
        it surely does not, ``UnknownOutcome`` if it cannot tell. ``since`` (epoch seconds) bounds
        when the create can have been made; by default the job id's own creation time."""

    async def poll(self, job: JobSpec, native_id: str) -> Upstream: ...

    def open_output(self, out: UpstreamOutput) -> AsyncIterator[bytes]: ...

    async def cancel(self, native_id: str) -> bool: ...

    async def aclose(self) -> None: ...


ProgressFn = Callable[[int], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class LocalOutput:
    index: int
    path: Path
    mime_type: str = "video/mp4"


@runtime_checkable
class LocalProvider(Protocol):
    """A provider that renders in this process; the worker holds the job's lease throughout."""

    name: str
    cancellable: bool

    async def run(
        self, job: JobSpec, workdir: Path, progress: ProgressFn, cancelled: Callable[[], bool]
    ) -> list[LocalOutput]: ...

    async def aclose(self) -> None: ...


def is_local(provider: RemoteProvider | LocalProvider) -> TypeGuard[LocalProvider]:
    """Whether ``provider`` renders in process. An attribute test: ``isinstance`` against a runtime
    protocol inspects every member on each call, a visible cost at thousands of polls a second."""
    return callable(getattr(provider, "run", None))
