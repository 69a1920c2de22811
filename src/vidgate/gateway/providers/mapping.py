"""Pieces of mapping a job onto an upstream request that every adapter needs the same way.

Refusing what an upstream cannot take, before any call (so routing can try another provider),
sending a reference image in the form an upstream reads, and naming a job's resolution when the
caller gave only a size.
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from vidgate.gateway.providers.base import JobSpec, ReferenceImage, Rejected

if TYPE_CHECKING:
    import numpy as np

_SHAPE = re.compile(r"[:*]")


# The end of a refusal for want of an https URL: how the caller or the operator makes the input reachable.
HTTPS_INPUT = (
    "send it as an https URL, or, for an upload or an earlier output, have the operator set the "
    "gateway's public_url (VIDGATE_PUBLIC_URL) to its https address so the upstream is given a link"
)


def unsupported(message: str) -> Rejected:
    """A refusal before any call of something the upstream cannot take; routing tries the next provider."""
    return Rejected(message, retryable=True, code="unsupported_parameter")


def other_roles(job: JobSpec, allowed: Iterable[str]) -> list[str]:
    """The job's reference roles outside ``allowed``, sorted, for a refusal that names them."""
    return sorted({r.role for r in job.references} - set(allowed))


def refuse_set(job: JobSpec, names: Iterable[str], who: str) -> None:
    """Refuse the first of the job's optional fields ``names`` that is set: ``{who} takes no {name}``."""
    for name in names:
        if getattr(job, name) is not None:
            raise unsupported(f"{who} takes no {name}")


def base64_text(data: bytes) -> str:
    return base64.b64encode(data).decode()


def data_url(ref: ReferenceImage) -> str:
    """The image inline as a ``data:`` URL."""
    return f"data:{ref.mime_type};base64,{base64_text(ref.data)}"


def image_link(
    ref: ReferenceImage,
    max_inline: int,
    *,
    schemes: tuple[str, ...] = ("https://", "http://"),
    oversize: str | None = None,
) -> str:
    """The image as a ``data:`` URL of at most ``max_inline`` characters, else its source URL.

    Inline is preferred so a short-lived source URL cannot expire before the upstream reads it. A
    source URL is used only when it starts with one of ``schemes``; without one, ``oversize`` is
    the refusal (``{role}`` filled in), or with ``oversize`` None the image goes inline anyway.
    """
    inline = data_url(ref)
    if len(inline) <= max_inline:
        return inline
    if ref.url.startswith(schemes):
        return ref.url
    if oversize is None:
        return inline
    raise Rejected(oversize.format(role=ref.role), retryable=False, code="invalid_reference")


def resolution_label(job: JobSpec, by_short_side: Mapping[int, str], *, upper: bool = False) -> str | None:
    """The job's resolution in the upstream's case, or the label of its short side when it gave only a size."""
    if job.resolution:
        return job.resolution.upper() if upper else job.resolution.lower()
    return by_short_side.get(min(job.width, job.height))


def nearest_shape(options: Iterable[str], width: int, height: int) -> str:
    """The ``W:H`` (or ``W*H``) option closest in shape to ``width`` x ``height``; the first of equals wins."""
    shape = width / height

    def distance(option: str) -> float:
        w, h = (int(x) for x in _SHAPE.split(option))
        return abs(math.log((w / h) / shape))

    return min(options, key=distance)


def fit_image(ref: ReferenceImage, width: int, height: int) -> tuple[ReferenceImage, str | None]:
    """``ref`` as exactly ``width`` x ``height`` pixels, and a note saying what was done (None: it was).

    For an upstream that refuses a first frame of another size: the picture is scaled to cover the
    frame and centre-cropped (as video models do with a frame of another shape) and sent as PNG.
    CPU-bound: call it in a worker thread. An image that cannot be read is refused for good.
    """
    from vidgate.gateway.render.image import ImageDecodeError, decode_image
    from vidgate.gateway.render.imagesize import sniff

    info = sniff(ref.data)
    if info is not None and (info.width, info.height) == (width, height):
        return ref, None
    try:
        rgb = decode_image(ref.data, width, height)
    except ImageDecodeError as exc:
        why = f"the {ref.role} image cannot be read: {exc}"
        raise Rejected(why, retryable=False, code="invalid_reference") from exc
    fitted = ReferenceImage(role=ref.role, url=ref.url, data=_png(rgb), mime_type="image/png")
    was = f"{info.width}x{info.height}" if info is not None else "another size"
    return fitted, f"{ref.role} resized from {was} to {width}x{height} (scaled to cover, centre cropped)"


def _png(rgb: np.ndarray) -> bytes:
    import av

    codec = av.CodecContext.create("png", "w")
    codec.width, codec.height, codec.pix_fmt = rgb.shape[1], rgb.shape[0], "rgb24"
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
    return b"".join(bytes(p) for p in (*codec.encode(frame), *codec.encode(None)))
