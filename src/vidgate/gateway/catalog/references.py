"""A create request's input references, in every shape the reference's clients send, made into the
spec's one ``Reference``: pure, no I/O.

The shapes: ``{type: image_url, image_url: {url}}``, ``{type: video_url | audio_url, media_url: {url}}``,
``{type: image | video | audio | mask, url | data (+ mime_type) | asset_id | file_id}``, and ``frame_images``
(``{type: image_url, image_url, frame_type}``: a first or last frame). Each is checked in that order:
its shape (``validation_error``), then whether the model takes its kind of medium in its role
(``unsupported_parameter``, naming what the model takes), then its source (the URL and inline-data
bounds of ``inputs``). An ``asset_id`` or ``file_id`` is checked for its form here; whose it is, by
``jobs.assets`` and ``jobs.files``. An ``asset_id`` that is an upload's id (``file_…``) names that upload;
one that is a video's id (``vid_…``, as ``POST /v1/videos`` returns it) names that job's first output.
"""

from __future__ import annotations

import re

from msgspec import UNSET

from vidgate.errors import UnsupportedParameterError, ValidationError
from vidgate.gateway.catalog.catalog import Model
from vidgate.gateway.catalog.inputs import check_media_url, clip
from vidgate.gateway.jobs.spec import MediaKind, Reference
from vidgate.gateway.net import IMAGE_TYPES
from vidgate.types import FrameImage, ImageURL, InputReference, VideoGenerationRequest

MAX_REFERENCES = 8
KIND_OF: dict[str, MediaKind] = {
    "image_url": "image",
    "video_url": "video",
    "audio_url": "audio",
    "image": "image",
    "video": "video",
    "audio": "audio",
    "mask": "image",
}
# The types an inline medium may declare; a fetched one is checked again against what its server says.
MIME_TYPES: dict[str, frozenset[str]] = {
    "image": IMAGE_TYPES,
    "video": frozenset({"video/mp4", "video/webm", "video/quicktime"}),
    "audio": frozenset(
        {"audio/mpeg", "audio/mp3", "audio/wav", "audio/x-wav", "audio/mp4", "audio/aac", "audio/ogg", "audio/flac"}
    ),
}
ASSET_ID = re.compile(r"^ast_[0-9A-Za-z]{1,64}$")
FILE_ID = re.compile(r"^file_[0-9A-Za-z]{1,64}$")
VIDEO_ID = re.compile(r"^vid_[0-9A-Za-z]{1,64}$")
_SOURCES = ("url", "data", "asset_id", "file_id")
# The fields each shape may carry beside ``type``, ``role`` and ``reference_type``.
_FIELDS = {
    "image_url": ("image_url",),
    "video_url": ("media_url",),
    "audio_url": ("media_url",),
    **dict.fromkeys(("image", "video", "audio", "mask"), (*_SOURCES, "mime_type")),
}


def references(req: VideoGenerationRequest, model: Model, *, allow_http: bool) -> tuple[Reference, ...]:
    """``input_references`` then ``frame_images``, each checked and normalised."""
    refs = [] if req.input_references is UNSET else req.input_references
    frames = [] if req.frame_images is UNSET else req.frame_images
    if len(refs) + len(frames) > MAX_REFERENCES:
        param = "input_references" if refs else "frame_images"
        raise ValidationError(f"at most {MAX_REFERENCES} input_references and frame_images in all", param=param)
    out = [_reference(ref, f"input_references[{i}]", model, allow_http) for i, ref in enumerate(refs)]
    out += [_frame(frame, f"frame_images[{i}]", model, allow_http) for i, frame in enumerate(frames)]
    for role in model.required_roles:
        kinds = [kind for kind in model.reference_kinds if role in model.reference_roles(kind)] or ["image"]
        if all(r.role != role or r.kind not in kinds for r in out):
            raise ValidationError(
                f"{model.id} needs a {role} {' or '.join(kinds)} in input_references", param="input_references"
            )
    roles = [r.role for r in out if r.role != "reference"]
    if len(roles) != len(set(roles)):
        raise ValidationError(
            "each of first_frame, last_frame, source, mask may be given once", param="input_references"
        )
    return tuple(out)


def takes(model: Model) -> str:
    """What the model takes as input references, for a refusal's message."""
    parts = [
        f"{kind} references with role {' or '.join(model.reference_roles(kind))}" for kind in model.reference_kinds
    ]
    return f"it takes {'; '.join(parts)}" if parts else "it takes no input references"


def _reference(ref: InputReference, at: str, model: Model, allow_http: bool) -> Reference:
    _check_shape(ref, at)
    kind = KIND_OF[ref.type]
    role = ref.role if ref.role is not UNSET else ("mask" if ref.type == "mask" else "reference")
    if ref.type == "mask" and role != "mask":
        raise ValidationError(f"a mask reference has the role mask, not {role}", param=f"{at}.role")
    _check_taken(model, kind, role, at, f"{at}.role")
    if ref.type == "image_url":
        assert ref.image_url is not UNSET
        return _by_url(kind, role, ref.image_url.url, f"{at}.image_url.url", allow_http)
    if ref.type in ("video_url", "audio_url"):
        assert ref.media_url is not UNSET
        return _by_url(kind, role, ref.media_url.url, f"{at}.media_url.url", allow_http)
    mime = None if ref.mime_type is UNSET else ref.mime_type
    if mime is not None and mime not in MIME_TYPES[kind]:
        raise ValidationError(
            f"mime_type {clip(mime)} is not a {kind} type; use one of {', '.join(sorted(MIME_TYPES[kind]))}",
            param=f"{at}.mime_type",
        )
    if ref.file_id is not UNSET:
        if not FILE_ID.match(ref.file_id):
            raise ValidationError(f"file_id {clip(ref.file_id)} is not a file id (file_…)", param=f"{at}.file_id")
        return Reference(role, "", kind=kind, file=ref.file_id)
    if ref.asset_id is not UNSET:
        if FILE_ID.match(ref.asset_id):
            return Reference(role, "", kind=kind, file=ref.asset_id)
        if VIDEO_ID.match(ref.asset_id) and kind != "video":
            raise ValidationError(
                f"asset_id {clip(ref.asset_id)} is a video's id; {kind} references take an asset id (ast_…) "
                "or a file id (file_…)",
                param=f"{at}.asset_id",
            )
        if not ASSET_ID.match(ref.asset_id) and not VIDEO_ID.match(ref.asset_id):
            raise ValidationError(
                f"asset_id {clip(ref.asset_id)} is not an asset id (ast_…), a video id (vid_…) or a file id (file_…)",
                param=f"{at}.asset_id",
            )
        return Reference(role, "", kind=kind, asset=ref.asset_id)
    if ref.url is not UNSET:
        return _by_url(kind, role, ref.url, f"{at}.url", allow_http)
    assert ref.data is not UNSET
    return _by_url(kind, role, _data_url(ref.data, mime, kind, f"{at}.data"), f"{at}.data", allow_http)


def _frame(frame: FrameImage, at: str, model: Model, allow_http: bool) -> Reference:
    _check_taken(model, "image", frame.frame_type, at, f"{at}.frame_type")
    if isinstance(frame.image_url, ImageURL):
        return _by_url("image", frame.frame_type, frame.image_url.url, f"{at}.image_url.url", allow_http)
    return _by_url("image", frame.frame_type, frame.image_url, f"{at}.image_url", allow_http)


def _check_shape(ref: InputReference, at: str) -> None:
    """The fields ``ref``'s type calls for, and no others (``validation_error``)."""
    allowed = _FIELDS[ref.type]
    given = [name for name in ("image_url", "media_url", *_SOURCES, "mime_type") if getattr(ref, name) is not UNSET]
    for name in given:
        if name not in allowed:
            raise ValidationError(
                f"{at}.{name} does not go with type {ref.type}; it takes {' or '.join(allowed)}",
                param=f"{at}.{name}",
            )
    if ref.type == "image_url" and ref.image_url is UNSET:
        raise ValidationError(f"{at}.image_url is required for type image_url", param=f"{at}.image_url")
    if ref.type in ("video_url", "audio_url") and ref.media_url is UNSET:
        raise ValidationError(f"{at}.media_url is required for type {ref.type}", param=f"{at}.media_url")
    if ref.type in ("image", "video", "audio", "mask"):
        sources = [name for name in _SOURCES if name in given]
        if len(sources) != 1:
            raise ValidationError(
                f"a reference of type {ref.type} takes exactly one of {', '.join(_SOURCES)}"
                + (f" (got {', '.join(sources)})" if sources else ""),
                param=at,
            )


def _check_taken(model: Model, kind: str, role: str, at: str, role_param: str) -> None:
    """The model takes ``kind`` references in ``role``, or the refusal names what it does take."""
    roles = model.reference_roles(kind)
    if kind == "video" and role == "source" and not model.operations:
        param = f"{at}.type" if model.reference_kinds and not roles else role_param
        raise UnsupportedParameterError(
            f"{model.id} does not extend or edit videos, so it takes no source video; {takes(model)}", param=param
        )
    if not model.reference_kinds:
        raise UnsupportedParameterError(f"{model.id} takes no input references", param=role_param)
    if not roles:
        raise UnsupportedParameterError(f"{model.id} takes no {kind} references; {takes(model)}", param=f"{at}.type")
    if role not in roles:
        raise UnsupportedParameterError(
            f"{model.id} does not take {kind} references with role {role}; supported roles: {', '.join(roles)}",
            param=role_param,
        )


def _by_url(kind: MediaKind, role: str, url: str, param: str, allow_http: bool) -> Reference:
    check_media_url(url, param, kind, allow_http=allow_http)
    return Reference(role, url, kind=kind)


def _data_url(data: str, mime: str | None, kind: str, param: str) -> str:
    """``data`` as a ``data:`` URL: given as one already, or base64 with its ``mime_type``."""
    if data.startswith("data:"):
        declared = data[5:].split(";", 1)[0].split(",", 1)[0]
        if mime is not None and declared != mime:
            raise ValidationError(f"the data: URL is {clip(declared)} but mime_type says {clip(mime)}", param=param)
        if declared not in MIME_TYPES[kind]:
            raise ValidationError(f"the data: URL's type {clip(declared)} is not a {kind} type we take", param=param)
        return data
    if mime is None:
        raise ValidationError("data in base64 needs its mime_type (or give a data: URL)", param=param)
    return f"data:{mime};base64,{data}"
