"""Rules an upstream enforces on how a request's fields combine, checked at create: pure, no I/O.

Each one would otherwise fail upstream, after the job was accepted and routed. A rule is declared
on the model in the catalogue (see ``catalog``): the durations a resolution is made at, the
durations and resolutions a reference role needs, features one request may not combine, and audio
that cannot be turned off. Every refusal names what the model does take.
"""

from __future__ import annotations

from collections.abc import Iterable

from vidgate.errors import UnsupportedParameterError, ValidationError
from vidgate.gateway.catalog.catalog import Model
from vidgate.gateway.jobs.spec import VideoSpec
from vidgate.gateway.routing import features


def check(model: Model, spec: VideoSpec, duration_param: str = "duration") -> None:
    """Refuse ``spec`` where it breaks one of ``model``'s rules (a 400 naming the param)."""
    if not spec.audio and model.audio_always:
        raise UnsupportedParameterError(
            f"{model.id} always makes audio; generate_audio cannot be false", param="generate_audio"
        )
    given = f"({duration_param} {spec.duration} given)"
    allowed = model.durations_by_resolution.get(spec.resolution or "")
    own_durations = spec.op == "extend" and bool(model.extend_durations)  # an extend's are its own
    if allowed is not None and not own_durations and spec.duration not in allowed:
        raise ValidationError(
            f"{model.id} makes {spec.resolution} only at {seconds(allowed)} {given}", param=duration_param
        )
    for ref in spec.references:
        durations = model.role_durations.get(ref.role)
        if durations is not None and spec.duration not in durations:
            raise ValidationError(
                f"{model.id} takes {_medium(ref.role, ref.kind)} only at {seconds(durations)} {given}",
                param=duration_param,
            )
        resolutions = model.role_resolutions.get(ref.role)
        if resolutions is not None and spec.resolution not in resolutions:
            raise ValidationError(
                f"{model.id} takes {_medium(ref.role, ref.kind)} only at {' or '.join(resolutions)} "
                f"(resolution {spec.resolution} given)",
                param="resolution",
            )
    used = features(spec)
    for group in model.exclusive:
        if all(f in used for f in group):
            names = [describe(f) for f in group]
            raise UnsupportedParameterError(
                f"{model.id} cannot combine {' with '.join(names)}; give one or the other", param=param_of(group[0])
            )


def seconds(values: Iterable[int]) -> str:
    listed = [str(v) for v in values]
    head = ", ".join(listed[:-1])
    return f"{f'{head} or ' if head else ''}{listed[-1]} seconds"


def _medium(role: str, kind: str) -> str:
    return f"{role} {kind}s" if role == "reference" else f"a {role} {kind}"


def describe(feature: str) -> str:
    """A feature (in ``unsupported``'s terms) as a request would give it."""
    if feature == "audio":
        return "generate_audio"
    if feature.startswith("op:"):
        return f"operation {feature[3:]}"
    if ":" in feature:
        kind, role = feature.split(":", 1)
        return _medium(role, "image" if kind == "role" else kind)
    return feature


def param_of(feature: str) -> str:
    if feature == "audio":
        return "generate_audio"
    if feature.startswith("op:"):
        return "operation"
    return "input_references" if ":" in feature else feature
