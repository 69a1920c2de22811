"""Names every part of the public models shares: job statuses, media roles, and the request and response bases."""

from __future__ import annotations

from typing import Literal

import msgspec

Status = Literal["queued", "processing", "completed", "failed", "cancelled", "expired"]
# The reference's name for each status: ``pending`` until a provider runs the job, then ``running``.
LifecycleStatus = Literal["pending", "running", "completed", "failed", "cancelled", "expired"]
TERMINAL_STATUSES: frozenset[str] = frozenset({"completed", "failed", "cancelled", "expired"})
OutputAccess = Literal["bytes", "signed_url", "both"]
Role = Literal["first_frame", "last_frame", "reference", "source", "mask"]
ReferenceType = Literal["image_url", "video_url", "audio_url", "image", "video", "audio", "mask"]
FrameType = Literal["first_frame", "last_frame"]
# What a job with a ``source`` video does with it: continue it, or re-make it under the prompt.
Operation = Literal["extend", "edit"]


class _Request(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    pass


class _Response(msgspec.Struct):
    """Responses always carry their defaults (``object``, ``is_byok``…); only UNSET fields are left out."""
