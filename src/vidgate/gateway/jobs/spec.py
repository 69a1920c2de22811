"""The job spec: a create request made whole. Validation returns it, the ``spec`` column stores it
as it is, and providers receive it with the job's context (``providers.base.JobSpec``).

Its JSON is the column's: fields in the order the gateway has always written them, and a field
typed ``UnsetType`` is left out when the request left it out, so every stored spec decodes and a
spec stored now reads the same to an older gateway.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

from vidgate.gateway.secret import Secret, SecretBox
from vidgate.types import Operation, OutputAccess

MediaKind = Literal["image", "video", "audio"]


class _Source(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A reference's kind and stored source: keyword-only and left out of the column at their defaults,
    so an image named by URL is stored exactly as it always was (``{role, url}``)."""

    kind: MediaKind = "image"
    asset: str | None = None
    file: str | None = None


class Reference(_Source, frozen=True):
    """An input medium as the request named it, whichever shape it came in; the worker fetches it
    before any provider sees it.

    Its source is exactly one of ``url`` (an https:// URL, or the bytes inline as a ``data:`` URL:
    the request's ``url``, ``image_url.url``, ``media_url.url``, or ``data`` with ``mime_type``),
    ``asset`` (the id of an output of one of the owner's completed jobs) and ``file`` (the id of one
    of the owner's uploads); ``url`` is empty for the last two.
    A mask is an image with the role ``mask``.
    """

    role: str
    url: str

    @property
    def feature(self) -> str:
        """What a provider must take to run a job with this reference (``unsupported`` in the catalogue)."""
        return f"role:{self.role}" if self.kind == "image" else f"{self.kind}:{self.role}"


class Extras(msgspec.Struct, frozen=True):
    """Request fields only some models take (those in their ``extra_params``)."""

    enhance_prompt: bool | UnsetType = UNSET
    compression_quality: int | UnsetType = UNSET
    person_generation: str | UnsetType = UNSET
    resize_mode: str | UnsetType = UNSET

    def names(self) -> tuple[str, ...]:
        """The fields the request set: the features a provider must support to take the job."""
        return tuple(name for name in self.__struct_fields__ if getattr(self, name) is not UNSET)


class Webhook(msgspec.Struct, frozen=True):
    """Where the job's events go, and what signs them.

    The request's secret is held as a ``Secret`` until the job is made; the column then keeps it only
    sealed (``secret_sealed``, bound to the job's id), and only the deliverer opens it. Rows written
    before sealing keep ``secret`` in the clear and still deliver. A job sent to a registered endpoint
    keeps only its id: the endpoint's sealed secrets sign. With none of these, deliveries go unsigned.
    """

    url: str
    secret: Secret | None = None
    events: tuple[str, ...] = ()
    endpoint_id: str | UnsetType = UNSET
    secret_sealed: Secret | UnsetType = UNSET  # the sealed text, itself kept out of any repr

    @property
    def signed(self) -> bool:
        """Whether deliveries carry signatures (the job's own secret, or its endpoint's)."""
        return bool(self.secret) or self.secret_sealed is not UNSET or bool(self.endpoint_id)

    def sealed(self, box: SecretBox | None, job_id: str) -> Webhook:
        """This webhook as the job's row keeps it: its secret sealed for ``job_id``, never in the clear."""
        if not self.secret:
            return self
        if box is None:
            raise RuntimeError("no SecretBox: a webhook's secret cannot be stored")
        token = box.seal(self.secret.reveal().encode(), context=_sealing_context(job_id))
        return msgspec.structs.replace(self, secret=None, secret_sealed=Secret(token))

    def signing_secret(self, box: SecretBox, job_id: str) -> Secret | None:
        """The job's own secret, opened for signing (``SealError`` when it does not open); None when it has none."""
        if self.secret_sealed is not UNSET:
            return Secret(box.open(self.secret_sealed.reveal(), context=_sealing_context(job_id)).decode())
        return self.secret or None


def _sealing_context(job_id: str) -> str:
    # Not the bare job id the row's provider keys are sealed under: neither opens in the other's place.
    return f"{job_id}/webhook"


class Routing(msgspec.Struct, frozen=True):
    """The request's ``provider`` preferences; what it left out takes the defaults routing applies."""

    include_alpha: bool | UnsetType = UNSET
    allow_fallbacks: bool | UnsetType = UNSET
    order: tuple[str, ...] | UnsetType = UNSET
    only: tuple[str, ...] | UnsetType = UNSET
    ignore: tuple[str, ...] | UnsetType = UNSET


class VideoSpec(msgspec.Struct, frozen=True):
    """What the job will be priced and run with, every default filled in."""

    model: str
    prompt: str
    duration: int
    width: int
    height: int
    resolution: str | None = None
    aspect_ratio: str | None = None
    audio: bool = False
    seed: int | None = None
    sample_count: int = 1
    negative_prompt: str | None = None
    references: tuple[Reference, ...] = ()
    provider_params: dict[str, Any] = {}
    extras: Extras = Extras()
    output_access: OutputAccess = "both"
    webhook: Webhook | None = None
    routing: Routing = Routing()
    provider_options: dict[str, dict[str, Any]] | UnsetType = UNSET  # by provider name, over provider_params
    input_audio_duration: float | UnsetType = UNSET  # what the caller says its input audio lasts (advisory)
    input_video_duration: float | UnsetType = UNSET
    # The base of the URLs the job was created through: its events and webhooks, which have no
    # request to take one from, show the same absolute URLs as the create's answer.
    base_url: str | UnsetType = UNSET
    # Set only for a job on a ``source`` video; a job without one generates.
    operation: Operation | UnsetType = UNSET

    @property
    def op(self) -> str:
        """``generate``, ``extend`` or ``edit``: what the job does."""
        return "generate" if self.operation is UNSET else self.operation

    @property
    def size(self) -> str:
        return f"{self.width}x{self.height}"

    def provider_params_for(self, provider: str | None) -> dict[str, Any]:
        """``provider_params`` with the request's ``provider_options`` for ``provider`` over them."""
        own = {} if self.provider_options is UNSET or provider is None else self.provider_options.get(provider)
        return {**self.provider_params, **own} if own else self.provider_params


def _to_json(value: object) -> object:
    if isinstance(value, Secret):
        return value.reveal()
    raise NotImplementedError(f"{type(value).__name__} is not JSON serializable")


def _from_json(kind: type, value: object) -> object:
    if kind is Secret and isinstance(value, str):
        return Secret(value)
    raise NotImplementedError(f"cannot decode {kind.__name__}")


_ENCODER = msgspec.json.Encoder(enc_hook=_to_json)  # a sealed secret (or an old row's clear one) for the column
_DECODER = msgspec.json.Decoder(VideoSpec, dec_hook=_from_json)


def encode_spec(spec: VideoSpec) -> str:
    """The ``spec`` column's text."""
    return _ENCODER.encode(spec).decode()


def decode_spec(text: str | bytes) -> VideoSpec:
    """A ``spec`` column's text as the typed spec."""
    return _DECODER.decode(text)
