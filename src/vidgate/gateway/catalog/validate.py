"""Validation of a create request against the catalogue: pure, no I/O.

Every failure names the offending ``param``; a value the model does not support lists what it
does support. The result is the job's ``VideoSpec`` with every default filled in, so pricing and
providers see exactly the seconds and size the job will run with. URLs, free-form objects and
inline images are bounded by ``inputs``; messages quote a caller's value only cut short.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
from msgspec import UnsetType

from vidgate.errors import ModelNotFoundError, ModelRetiredError, UnsupportedParameterError, ValidationError
from vidgate.gateway.catalog import operations
from vidgate.gateway.catalog.catalog import RESOLUTION_SHORT_SIDE, Catalog, Model
from vidgate.gateway.catalog.inputs import FREE_FORM, check_free_form, check_nesting, clip, cut, too_deep
from vidgate.gateway.catalog.references import references
from vidgate.gateway.catalog.rules import check as check_rules
from vidgate.gateway.catalog.webhook_config import job_webhook
from vidgate.gateway.jobs.spec import Extras, Routing, VideoSpec
from vidgate.types import VideoGenerationRequest

SIZE_RE = re.compile(r"^([1-9][0-9]{1,4})x([1-9][0-9]{1,4})$")
RATIO_RE = re.compile(r"^([1-9][0-9]{0,2}):([1-9][0-9]{0,2})$")
MAX_PROMPT_CHARS = 10_000
MAX_SEED = 2**32 - 1
# Fields accepted and ignored, or holding provider fields themselves: provider_params may use these names.
_NOT_SHADOWED = frozenset({"debug", "beta", "provider_options"})
TOP_LEVEL_FIELDS = frozenset(VideoGenerationRequest.__struct_fields__) - _NOT_SHADOWED
# Request fields that only some models accept; a model opts in with ``extra_params``.
OPTIONAL_FIELDS = ("enhance_prompt", "compression_quality", "person_generation", "resize_mode")


def _even(n: float) -> int:
    return max(2, round(n / 2.0) * 2)


def size_for(resolution: str, aspect_ratio: str) -> tuple[int, int]:
    """The pixel size a resolution label and an aspect ratio stand for (short side = label)."""
    short = RESOLUTION_SHORT_SIDE[resolution]
    w, h = (int(x) for x in aspect_ratio.split(":"))
    if w >= h:
        return _even(short * w / h), short
    return short, _even(short * h / w)


def _ratio_of(width: int, height: int) -> str:
    from math import gcd

    g = gcd(width, height)
    return f"{width // g}:{height // g}"


def _resolution_of(width: int, height: int) -> str | None:
    short = min(width, height)
    return next((label for label, side in RESOLUTION_SHORT_SIDE.items() if side == short), None)


def _listing(values: Any) -> str:
    return ", ".join(str(v) for v in values)


def _check_size(model: Model, text: str) -> tuple[int, int]:
    m = SIZE_RE.match(text)
    if not m:
        raise ValidationError(f"size must look like WIDTHxHEIGHT (e.g. 1280x720), got {clip(text)}", param="size")
    width, height = int(m.group(1)), int(m.group(2))
    if model.sizes:
        if text not in model.sizes:
            raise ValidationError(
                f"size {text} is not supported by {model.id}; supported: {_listing(model.sizes)}", param="size"
            )
        return width, height
    rng = model.size_range or {}
    lo, hi = rng.get("min_side", 64), rng.get("max_side", 1920)
    max_pixels = rng.get("max_pixels", hi * hi)
    if width % 2 or height % 2:
        raise ValidationError(f"size {text}: width and height must be even numbers", param="size")
    if not (lo <= width <= hi and lo <= height <= hi) or width * height > max_pixels:
        raise ValidationError(
            f"size {text} is out of range for {model.id}: each side {lo}-{hi} pixels "
            f"and at most {max_pixels} pixels in all (e.g. 1920x1080)",
            param="size",
        )
    return width, height


def _resolve_size(model: Model, req: VideoGenerationRequest) -> tuple[int, int, str | None, str | None]:
    has_size = req.size is not msgspec.UNSET
    if has_size and (req.resolution is not msgspec.UNSET or req.aspect_ratio is not msgspec.UNSET):
        other = "resolution" if req.resolution is not msgspec.UNSET else "aspect_ratio"
        raise ValidationError(f"size cannot be combined with {other}; give one or the other", param="size")
    if has_size:
        width, height = _check_size(model, str(req.size))
        return width, height, _resolution_of(width, height), _ratio_of(width, height)
    resolution = req.resolution if req.resolution is not msgspec.UNSET else model.default_resolution
    ratio = req.aspect_ratio if req.aspect_ratio is not msgspec.UNSET else model.default_aspect_ratio
    if req.resolution is not msgspec.UNSET:
        if resolution not in RESOLUTION_SHORT_SIDE:
            raise ValidationError(
                f"resolution {clip(resolution)} is not a resolution; use one of {_listing(RESOLUTION_SHORT_SIDE)}",
                param="resolution",
            )
        if resolution not in model.resolutions:
            raise ValidationError(
                f"resolution {resolution} is not supported by {model.id}; supported: {_listing(model.resolutions)}",
                param="resolution",
            )
    if req.aspect_ratio is not msgspec.UNSET:
        if not RATIO_RE.match(str(ratio)):
            raise ValidationError(
                f"aspect_ratio must look like W:H (e.g. 16:9), got {clip(ratio)}", param="aspect_ratio"
            )
        if ratio not in model.aspect_ratios:
            raise ValidationError(
                f"aspect_ratio {ratio} is not supported by {model.id}; supported: {_listing(model.aspect_ratios)}",
                param="aspect_ratio",
            )
    if resolution is None or ratio is None:
        if model.default_size:
            w, h = (int(x) for x in model.default_size.split("x"))
            return w, h, _resolution_of(w, h), _ratio_of(w, h)
        raise ValidationError(f"{model.id} needs a size", param="size")
    width, height = size_for(str(resolution), str(ratio))
    if model.sizes and f"{width}x{height}" not in model.sizes:
        raise ValidationError(
            f"{resolution} at {ratio} ({width}x{height}) is not supported by {model.id}; "
            f"supported sizes: {_listing(model.sizes)}",
            param="resolution" if req.resolution is not msgspec.UNSET else "aspect_ratio",
        )
    return width, height, str(resolution), str(ratio)


def _routing(req: VideoGenerationRequest, model: Model, known: frozenset[str]) -> Routing:
    if req.provider is msgspec.UNSET:
        return Routing()
    pref = req.provider
    for key, names in (("order", pref.order), ("only", pref.only), ("ignore", pref.ignore)):
        if names is msgspec.UNSET:
            continue
        for i, name in enumerate(names):
            if name not in known:
                raise ValidationError(
                    f"unknown provider {clip(name)}; providers: {_listing(sorted(known))}", param=f"provider.{key}[{i}]"
                )
    return Routing(
        include_alpha=pref.include_alpha,
        allow_fallbacks=pref.allow_fallbacks,
        order=_names(pref.order),
        only=_names(pref.only),
        ignore=_names(pref.ignore),
    )


def _names(names: list[str] | msgspec.UnsetType) -> tuple[str, ...] | msgspec.UnsetType:
    return names if names is msgspec.UNSET else tuple(names)


def normalize(req: VideoGenerationRequest, catalog: Catalog, *, allow_http: bool = False) -> VideoSpec:
    """Check ``req`` against its model and fill in every default.

    ``allow_http`` lets image and webhook URLs be plain ``http://`` (where private URLs are allowed).
    """
    prompt = req.prompt.strip()
    if not prompt:
        raise ValidationError("prompt must not be empty", param="prompt")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise ValidationError(f"prompt is longer than {MAX_PROMPT_CHARS} characters", param="prompt")
    model = catalog.get(req.model)
    if model is None:
        raise ModelNotFoundError(
            f"model {clip(req.model)} is not in the catalogue; see GET /v1/videos/models", param="model"
        )
    if model.retired is not None:
        raise ModelRetiredError(
            f"{model.id} was retired on {model.retired}: its maker no longer serves it; see GET /v1/videos/models",
            param="model",
        )
    refs = references(req, model, allow_http=allow_http)
    operation = operations.resolve(model.id, model.operations, refs, req.operation)
    op = "generate" if operation is msgspec.UNSET else operation
    operations.check_reference_images(model.id, model.max_reference_images, refs)
    duration, duration_param = _duration(req, model, op)
    if not model.supports_duration(duration, op):
        what = "an extend" if op == "extend" and model.extend_durations else model.id
        raise ValidationError(
            f"{duration_param} {duration} is not supported by {what}; supported: {model.duration_text(op)}",
            param=duration_param,
        )
    width, height, resolution, ratio = _resolve_size(model, req)

    audio = req.generate_audio if req.generate_audio is not msgspec.UNSET else model.default_audio
    if audio and not model.audio:
        raise UnsupportedParameterError(f"{model.id} cannot generate audio", param="generate_audio")
    seed: int | None = None
    if req.seed is not msgspec.UNSET:
        if not model.seed:
            raise UnsupportedParameterError(f"{model.id} does not take a seed", param="seed")
        if not 0 <= req.seed <= MAX_SEED:
            raise ValidationError(f"seed must be between 0 and {MAX_SEED}", param="seed")
        seed = req.seed
    negative: str | None = None
    if req.negative_prompt is not msgspec.UNSET:
        if not model.negative_prompt:
            raise UnsupportedParameterError(f"{model.id} does not take a negative_prompt", param="negative_prompt")
        if len(req.negative_prompt) > MAX_PROMPT_CHARS:
            raise ValidationError(
                f"negative_prompt is longer than {MAX_PROMPT_CHARS} characters", param="negative_prompt"
            )
        negative = req.negative_prompt
    lo, hi = model.sample_count
    sample_count = req.sample_count if req.sample_count is not msgspec.UNSET else 1
    if not lo <= sample_count <= hi:
        raise ValidationError(f"sample_count must be between {lo} and {hi} for {model.id}", param="sample_count")
    extras: dict[str, Any] = {}
    for name in OPTIONAL_FIELDS:
        value = getattr(req, name)
        if value is msgspec.UNSET:
            continue
        if name not in model.extra_params:
            raise UnsupportedParameterError(f"{model.id} does not take {name}", param=name)
        extras[name] = value

    params = dict(req.provider_params) if req.provider_params is not msgspec.UNSET else {}
    _check_provider_fields(params, "provider_params")
    options = _provider_options(req, catalog.provider_names)
    access = req.output.access if req.output is not msgspec.UNSET else "both"
    spec = VideoSpec(
        model=model.id,
        prompt=prompt,
        duration=duration,
        width=width,
        height=height,
        resolution=resolution,
        aspect_ratio=ratio,
        audio=bool(audio),
        seed=seed,
        sample_count=sample_count,
        negative_prompt=negative,
        references=refs,
        provider_params=params,
        extras=Extras(**extras),
        output_access=access,
        webhook=job_webhook(req.webhook, allow_http=allow_http),
        routing=_routing(req, model, catalog.provider_names),
        provider_options=options,
        input_audio_duration=_input_seconds(req.input_audio_duration, "input_audio_duration", model),
        input_video_duration=_input_seconds(req.input_video_duration, "input_video_duration", model),
        operation=operation,
    )
    check_rules(model, spec, duration_param)
    return spec


def _duration(req: VideoGenerationRequest, model: Model, op: str = "generate") -> tuple[int, str]:
    """The duration and the name it was given under: ``duration``, or ``duration_seconds`` (the
    reference SDK's spelling); both may be given only with one value. An extend left without one adds
    the model's default where an extend may, else the first of its ``extend_durations``."""
    given, alias = req.duration, req.duration_seconds
    if given is not msgspec.UNSET and alias is not msgspec.UNSET and given != alias:
        raise ValidationError(
            f"duration {given} and duration_seconds {alias} differ; give one of them", param="duration_seconds"
        )
    if given is not msgspec.UNSET:
        return given, "duration"
    if alias is not msgspec.UNSET:
        return alias, "duration_seconds"
    if op == "extend" and model.extend_durations and model.default_duration not in model.extend_durations:
        return model.extend_durations[0], "duration"
    return model.default_duration, "duration"


def _check_provider_fields(fields: dict[str, Any], param: str) -> None:
    """Free-form provider fields: bounded, and never a top-level field under another guise."""
    check_free_form(fields, param)
    for key in fields:
        if key in TOP_LEVEL_FIELDS:
            raise ValidationError(
                f"{param}.{key} shadows the top-level field {key}; set {key} directly", param=f"{param}.{key}"
            )


def _provider_options(req: VideoGenerationRequest, known: frozenset[str]) -> dict[str, dict[str, Any]] | UnsetType:
    """``provider_options``: per provider, by name, fields sent only when that provider runs the job."""
    if req.provider_options is msgspec.UNSET:
        return msgspec.UNSET
    for name, fields in req.provider_options.items():
        if name not in known:
            raise ValidationError(
                f"provider_options names unknown provider {clip(name)}; providers: {_listing(sorted(known))}",
                param=f"provider_options.{cut(name, 100)}",
            )
        _check_provider_fields(fields, f"provider_options.{name}")
    return {name: dict(fields) for name, fields in req.provider_options.items() if fields} or msgspec.UNSET


def _input_seconds(value: float | UnsetType, name: str, model: Model) -> float | UnsetType:
    """What the caller says an input medium lasts: checked against the model's bounds where it
    declares some, otherwise only kept (advisory)."""
    bounds = model.input_audio_seconds if name == "input_audio_duration" else model.input_video_seconds
    if value is msgspec.UNSET or bounds is None:
        return value
    lo, hi = bounds
    if not lo <= value <= hi:
        raise ValidationError(f"{name} must be between {lo:g} and {hi:g} seconds for {model.id}", param=name)
    return value


def decode_request(body: bytes) -> VideoGenerationRequest:
    """Decode and type-check a create body, turning msgspec's complaint into a named param.

    Free-form fields are bounded before msgspec recurses into them. Only they (typed ``Any``) can
    make it recurse, as every other field is refused at its first wrong token: so a ``RecursionError``
    (nesting past what orjson parses) names the first of them the body holds.
    """
    check_nesting(body)
    try:
        return msgspec.json.decode(body, type=VideoGenerationRequest)
    except msgspec.ValidationError as exc:
        message, param = explain(str(exc))
        raise ValidationError(message, param=param) from None
    except msgspec.DecodeError as exc:
        raise ValidationError(f"the body is not valid JSON: {cut(str(exc), 200)}") from None
    except RecursionError:
        raise too_deep(next((f for f in FREE_FORM if f'"{f}"'.encode() in body), FREE_FORM[0])) from None


_AT = re.compile(r" - at `\$(.*)`$")
_MISSING = re.compile(r"missing required field `([^`]+)`")
_UNKNOWN = re.compile(r"unknown field `([^`]+)`")


def explain(message: str) -> tuple[str, str | None]:
    """msgspec says ``Expected `int`, got `str` - at `$.duration```; we say which param."""
    path = ""
    if m := _AT.search(message):
        path = m.group(1)
        message = message[: m.start()]
    param = path.lstrip(".").replace("].", "].") or None
    if m := _MISSING.search(message):
        param = f"{param}.{m.group(1)}" if param else m.group(1)
        return f"{param} is required", param
    if m := _UNKNOWN.search(message):
        name = cut(m.group(1), 100)  # a caller's key: maybe huge
        param = f"{param}.{name}" if param else name
        return f"unknown field {param}", param
    if param is None:
        return f"the body must be a JSON object: {message}", None
    return f"{param}: {message}", param


def validate(body: bytes, catalog: Catalog, *, allow_http: bool = False) -> VideoSpec:
    return normalize(decode_request(body), catalog, allow_http=allow_http)
