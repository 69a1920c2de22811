"""What a model does with a ``source`` video, and the bounds on its input media: pure, no I/O.

A model declares ``operations`` (``extend``: continue the source; ``edit``: re-make it under the
prompt), ``max_reference_images`` and ``extend_durations`` (the seconds an extend adds, where they are
not its ``durations``). A request with a source video says which operation it wants, or leaves it to
a model that does only one; a provider whose ``unsupported`` names ``op:extend`` or ``op:edit`` is
passed over for such jobs. ``input_video_seconds`` and ``input_audio_seconds`` bound how long an
input video or audio lasts, checked against what the caller states and against what was measured.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from msgspec import UNSET, UnsetType

from vidgate.errors import ValidationError
from vidgate.gateway.jobs.spec import Reference, VideoSpec
from vidgate.types import Operation

OPERATIONS: tuple[Operation, ...] = ("extend", "edit")
SOURCE = "source"
# How far a stated input duration may be from the measured one before the job is refused.
ADVISORY_TOLERANCE_SECONDS = 0.5
_ADVISORY = {"video": "input_video_duration", "audio": "input_audio_duration"}


class CatalogKeyError(ValueError):
    """A catalogue key that is wrong, naming the model and the key; ``str`` is one line."""

    def __init__(self, model_id: str, key: str, message: str) -> None:
        super().__init__(f"model {model_id}: {key}: {message}")
        self.model_id = model_id
        self.key = key
        self.message = message


def parse_keys(raw: dict[str, Any]) -> tuple[tuple[Operation, ...], int | None, tuple[int, ...]]:
    """``operations``, ``max_reference_images`` and ``extend_durations`` of a ``[[models]]`` table."""
    model_id = str(raw.get("id", "?"))
    ops = raw.get("operations", ())
    if not isinstance(ops, list | tuple) or not all(isinstance(op, str) for op in ops):
        raise CatalogKeyError(model_id, "operations", f"expected a list of {' and '.join(OPERATIONS)}")
    if unknown := [op for op in ops if op not in OPERATIONS]:
        raise CatalogKeyError(model_id, "operations", f"{unknown[0]} is not an operation; use {', '.join(OPERATIONS)}")
    if len(set(ops)) != len(ops):
        raise CatalogKeyError(model_id, "operations", "names an operation twice")
    limit = raw.get("max_reference_images")
    if limit is not None and (not _whole(limit) or limit < 1):
        raise CatalogKeyError(model_id, "max_reference_images", "expected a whole number of at least 1")
    extend = raw.get("extend_durations", ())
    if not isinstance(extend, list | tuple) or not all(_whole(d) and d > 0 for d in extend):
        raise CatalogKeyError(model_id, "extend_durations", "expected a list of whole numbers of seconds")
    return cast(tuple[Operation, ...], tuple(ops)), limit, tuple(extend)


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def model_problem(
    operations: Sequence[str],
    extend_durations: Sequence[int],
    video_roles: Sequence[str],
    unsupported: Sequence[frozenset[str]],
) -> tuple[str, str] | None:
    """The first operations key that contradicts another, and why; None when they hold together."""
    if operations and SOURCE not in video_roles:
        return "operations", 'a model with operations takes a source video: list "source" in video_reference_roles'
    if extend_durations and "extend" not in operations:
        return "extend_durations", 'only a model whose operations include "extend" has extend_durations'
    for cannot in unsupported:
        named = sorted(f for f in cannot if f.startswith("op:"))
        if bad := [f for f in named if f[3:] not in OPERATIONS]:
            return "providers", f"unsupported names {bad[0]}; operations are {', '.join(OPERATIONS)}"
    return None


def source_index(refs: Sequence[Reference]) -> int | None:
    """The index of the source video among ``refs`` (one at most: roles other than reference are unique)."""
    return next((i for i, r in enumerate(refs) if r.kind == "video" and r.role == SOURCE), None)


def resolve(
    model_id: str, operations: Sequence[Operation], refs: Sequence[Reference], requested: Operation | UnsetType
) -> Operation | UnsetType:
    """The job's operation where a source video is given: the one asked for, else edit where the model
    edits, else the model's only one."""
    at = source_index(refs)
    if at is None:
        if requested is not UNSET:
            raise ValidationError(
                f"operation {requested} needs a source video: an input reference of type video "
                'with role "source" (a URL, a file_id, an asset_id, or the id of one of your completed videos)',
                param="operation",
            )
        return UNSET
    assert operations, "references() refuses a source video to a model without operations"
    if requested is not UNSET:
        if requested not in operations:
            raise ValidationError(
                f"operation {requested} is not supported by {model_id}; supported: {', '.join(operations)}",
                param="operation",
            )
        return requested
    # A source with no operation is the video being edited, as the reference's clients mean it;
    # extending is always asked for.
    return "edit" if "edit" in operations else operations[0]


def check_reference_images(model_id: str, limit: int | None, refs: Sequence[Reference]) -> None:
    """At most ``limit`` images with the role ``reference``."""
    count = sum(1 for r in refs if r.kind == "image" and r.role == "reference")
    if limit is not None and count > limit:
        raise ValidationError(
            f"{model_id} takes at most {limit} reference image{'s' if limit != 1 else ''} ({count} given)",
            param="input_references",
        )


@dataclass(frozen=True, slots=True)
class InputCheck:
    """An input video or audio whose length is to be checked once known: against the model's bounds,
    and (for the first of its kind, the source video before any other) against what the caller stated."""

    index: int
    ref: Reference
    bounds: tuple[float, float] | None
    stated: float | UnsetType

    def problem(self, measured: float, model_id: str) -> str | None:
        what = describe_input(self.index, self.ref)
        return duration_problem(self.ref.kind, measured, self.bounds, self.stated, model_id=model_id, what=what)


def input_checks(
    spec: VideoSpec, video_bounds: tuple[float, float] | None, audio_bounds: tuple[float, float] | None
) -> list[InputCheck]:
    """The spec's video and audio inputs that have a length to be checked against, in order."""
    bounds = {"video": video_bounds, "audio": audio_bounds}
    stated = {"video": spec.input_video_duration, "audio": spec.input_audio_duration}
    at_source = source_index(spec.references)
    first = {kind: next((i for i, r in enumerate(spec.references) if r.kind == kind), None) for kind in bounds}
    if at_source is not None:
        first["video"] = at_source
    out = []
    for i, ref in enumerate(spec.references):
        if ref.kind not in bounds:
            continue
        said = stated[ref.kind] if first[ref.kind] == i else UNSET
        if bounds[ref.kind] is not None or said is not UNSET:
            out.append(InputCheck(i, ref, bounds[ref.kind], said))
    return out


def duration_problem(
    kind: str,
    measured: float,
    bounds: tuple[float, float] | None,
    stated: float | UnsetType,
    *,
    model_id: str,
    what: str,
) -> str | None:
    """Why an input medium of ``kind`` lasting ``measured`` seconds cannot be used, or None.

    ``what`` names the input in the message (``input_references[0] (source video)``)."""
    if bounds is not None:
        lo, hi = bounds
        if not lo <= measured <= hi:
            return f"{what} lasts {measured:g} seconds; {model_id} takes {kind} inputs of {lo:g} to {hi:g} seconds"
    if stated is not UNSET and abs(stated - measured) > ADVISORY_TOLERANCE_SECONDS:
        return f"{what} lasts {measured:g} seconds, but {_ADVISORY[kind]} says {stated:g}"
    return None


def describe_input(index: int, ref: Reference) -> str:
    """How a message names an input reference."""
    return f"input_references[{index}] ({ref.role} {ref.kind})"
