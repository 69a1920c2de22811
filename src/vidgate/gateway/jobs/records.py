"""Rows of the ``jobs`` table as typed records, decoded once, where they leave the database.

The JSON columns (``spec``, ``error``, ``attempts``, ``outputs``) become typed fields here and
nowhere else, through typed decoders; they are written back through ``column_json``. The
``byok`` column stays sealed: a ``Secret`` around the sealed text, opened only where the keys are
used (``worker.jobspec.own_keys``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

from vidgate.gateway.events.webhook_state import Shown, decode_shown
from vidgate.gateway.jobs.spec import VideoSpec, decode_spec
from vidgate.gateway.secret import Secret
from vidgate.gateway.storage.db import Row
from vidgate.types import Asset, JobError, ProviderAttempt, Status

Outcome = Literal["accepted", "rejected", "skipped", "pending", "submitting", "unknown"]
BillingState = Literal["held", "settled", "void", "none"]


class Attempt(msgspec.Struct, frozen=True):
    """One create sent to a provider, with what the worker keeps about it beyond what a view shows."""

    provider: str
    outcome: Outcome
    at: int  # epoch seconds
    message: str | UnsetType = UNSET
    status_code: int | UnsetType = UNSET
    idempotency_key: str | UnsetType = UNSET  # what the create carried, so a lookup by it finds the job
    reason: str | UnsetType = UNSET  # why its answer was lost
    lookup: bool | UnsetType = UNSET  # False: the provider cannot be asked whether it made the job
    lookups: int | UnsetType = UNSET
    round_end: bool | UnsetType = UNSET  # the last refusal of a round over the whole plan
    store_failures: int | UnsetType = UNSET
    store_since: int | UnsetType = UNSET  # epoch ms of the first of those failures

    def public(self) -> ProviderAttempt:
        return ProviderAttempt(self.provider, self.outcome, self.at, self.message, self.status_code)


class StoredImage(msgspec.Struct, frozen=True):
    """A still made from an output (its poster, its spritesheet), stored beside it.

    It has the names ``StoredOutput`` has for the same facts, so both are served by one code path.
    A spritesheet's grid is ``columns`` x ``rows`` tiles of ``tile_width`` x ``tile_height``, row
    by row, ``tiles`` of them.
    """

    key: str
    mime_type: str
    bytes: int
    sha256: str
    width: int
    height: int
    tiles: int | UnsetType = UNSET
    columns: int | UnsetType = UNSET
    rows: int | UnsetType = UNSET
    tile_width: int | UnsetType = UNSET
    tile_height: int | UnsetType = UNSET


class StoredOutput(msgspec.Struct, frozen=True):
    """One output copied into the blob store, with what hashing and probing it found.

    ``thumbnail`` and ``spritesheet`` are absent on rows stored before they were made, and on an
    output they could not be made for.
    """

    index: int
    asset_id: str
    key: str  # the object's key in the blob store
    mime_type: str
    bytes: int
    sha256: str
    width: int
    height: int
    duration_seconds: float
    frames: int
    has_audio: bool
    thumbnail: StoredImage | UnsetType = UNSET
    spritesheet: StoredImage | UnsetType = UNSET

    def object_keys(self) -> list[str]:
        """Every object key this output owns: the video's and its images'."""
        keys = [self.key]
        if self.thumbnail is not UNSET:
            keys.append(self.thumbnail.key)
        if self.spritesheet is not UNSET:
            keys.append(self.spritesheet.key)
        return keys

    def asset(self) -> Asset:
        return Asset(
            self.asset_id, self.mime_type, self.bytes, self.sha256, self.width, self.height, self.duration_seconds
        )


class StoredError(msgspec.Struct, frozen=True):
    """Why a job ended without outputs; its attempts keep what the worker knew of each."""

    code: str
    message: str
    provider: str | UnsetType = UNSET
    provider_request_id: str | UnsetType = UNSET
    attempts: tuple[Attempt, ...] | UnsetType = UNSET

    def public(self) -> JobError:
        attempts = UNSET if self.attempts is UNSET else [a.public() for a in self.attempts]
        return JobError(self.code, self.message, self.provider, self.provider_request_id, attempts)


def job_error(
    code: str,
    message: str,
    *,
    provider: str | None = None,
    provider_request_id: str | None = None,
    attempts: Sequence[Attempt] | None = None,
) -> StoredError:
    """A job's error; what is unknown (None) is left out."""
    return StoredError(
        code,
        message,
        UNSET if provider is None else provider,
        UNSET if provider_request_id is None else provider_request_id,
        UNSET if attempts is None else tuple(attempts),
    )


class JobView(msgspec.Struct, frozen=True):
    """The columns a poll reads (``VIEW_COLUMNS``, in this order): all the public view of a job shows."""

    id: str
    model: str
    status: Status
    provider: str | None
    native_id: str | None
    spec: VideoSpec
    created_at: int  # epoch ms, as every time column
    started_at: int | None
    completed_at: int | None
    expected_seconds: int
    progress: int | None
    progress_source: str | None
    error: StoredError | None
    attempts: tuple[Attempt, ...] | None  # None: no create was sent yet
    outputs: tuple[StoredOutput, ...]
    request_id: str | None
    quote: int  # micro-dollars held at create
    cost: int | None
    billing_state: BillingState
    is_byok: bool
    webhook_state: Shown | None  # the deliverer's summary of the job's webhook attempts

    @classmethod
    def from_values(cls, v: Sequence[Any]) -> JobView:
        """A row of ``VIEW_COLUMNS`` taken column by column: a poll's read, with no dict built for it."""
        error, attempts, outputs = v[12], v[13], v[14]
        return cls(
            v[0],
            v[1],
            v[2],
            v[3],
            v[4],
            decode_spec(v[5]),
            v[6],
            v[7],
            v[8],
            v[9],
            v[10],
            v[11],
            _ERROR.decode(error) if error else None,
            _ATTEMPTS.decode(attempts) if attempts else None,
            _OUTPUTS.decode(outputs) if outputs else (),
            v[15],
            v[16],
            v[17],
            v[18],
            bool(v[19]),
            decode_shown(v[20]),
        )


VIEW_COLUMNS = ", ".join(JobView.__struct_fields__)


class JobRecord(JobView, frozen=True):
    """Every column of a job."""

    owner_id: str
    updated_at: int
    deadline_at: int
    idempotency_key: str | None
    request_hash: str | None
    lease_owner: str | None
    lease_until: int | None
    next_run_at: int | None
    poll_failures: int
    cancel_requested: bool
    byok: Secret | None  # the owner's own provider keys, sealed
    version: int

    @classmethod
    def from_row(cls, row: Row) -> JobRecord:
        """A row of every column (``SELECT *``, ``RETURNING *``), read by name, passed in field order."""
        error, attempts, outputs, sealed = row["error"], row["attempts"], row["outputs"], row["byok"]
        return cls(
            row["id"],
            row["model"],
            row["status"],
            row["provider"],
            row["native_id"],
            decode_spec(row["spec"]),
            row["created_at"],
            row["started_at"],
            row["completed_at"],
            row["expected_seconds"],
            row["progress"],
            row["progress_source"],
            _ERROR.decode(error) if error else None,
            _ATTEMPTS.decode(attempts) if attempts else None,
            _OUTPUTS.decode(outputs) if outputs else (),
            row["request_id"],
            row["quote"],
            row["cost"],
            row["billing_state"],
            bool(row["is_byok"]),
            decode_shown(row["webhook_state"]),
            row["owner_id"],
            row["updated_at"],
            row["deadline_at"],
            row["idempotency_key"],
            row["request_hash"],
            row["lease_owner"],
            row["lease_until"],
            row["next_run_at"],
            row["poll_failures"],
            bool(row["cancel_requested"]),
            None if sealed is None else Secret(sealed),
            row["version"],
        )


_ERROR = msgspec.json.Decoder(StoredError)
_ATTEMPTS = msgspec.json.Decoder(tuple[Attempt, ...])
_OUTPUTS = msgspec.json.Decoder(tuple[StoredOutput, ...])
_ENCODER = msgspec.json.Encoder()


def decode_outputs(text: str | None) -> tuple[StoredOutput, ...]:
    """An ``outputs`` column read on its own (retention, storage checks)."""
    return _OUTPUTS.decode(text) if text else ()


def column_json(value: StoredError | Sequence[Attempt] | Sequence[StoredOutput] | None) -> str | None:
    """A JSON column's text for a write (NULL for None)."""
    return None if value is None else _ENCODER.encode(value).decode()
