"""What the API does with jobs: create, read, list, cancel and delete, always within one owner."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import msgspec
import orjson

from vidgate.errors import ConflictError, NotFoundError, ValidationError
from vidgate.gateway.billing import accounts, ledger
from vidgate.gateway.catalog.catalog import Catalog
from vidgate.gateway.events.bus import EventBus
from vidgate.gateway.events.outbox import emit
from vidgate.gateway.ids import new_id, now_ms
from vidgate.gateway.jobs import assets, create_pg, state
from vidgate.gateway.jobs.intake import intake
from vidgate.gateway.jobs.lifecycle import Lifecycle
from vidgate.gateway.jobs.records import VIEW_COLUMNS, JobRecord, JobView
from vidgate.gateway.jobs.spec import encode_spec
from vidgate.gateway.jobs.views import render
from vidgate.gateway.providers.registry import Providers
from vidgate.gateway.secret import Secret, SecretBox, seal_keys
from vidgate.gateway.storage.blobs import BlobStore, schedule_removal
from vidgate.gateway.storage.db import Database, Q
from vidgate.gateway.storage.space import DiskSpace
from vidgate.types import Video, VideoDeleted, VideoList

STATUS_ALIASES = {
    "pending": "queued",
    "in_progress": "processing",
    "running": "processing",
    "canceled": "cancelled",
    "queued": "queued",
    "processing": "processing",
    "completed": "completed",
    "failed": "failed",
    "cancelled": "cancelled",
    "expired": "expired",
}
_GET = Q("SELECT * FROM jobs WHERE id = :id AND owner_id = :owner")
# Only the columns views.render reads: a poll or a list page reads these and nothing else.
_VIEW = Q(f"SELECT {VIEW_COLUMNS} FROM jobs WHERE id = :id AND owner_id = :owner")
_GET_ANY = Q("SELECT * FROM jobs WHERE id = :id")
_BY_IDEMPOTENCY = Q("SELECT * FROM jobs WHERE owner_id = :owner AND idempotency_key = :key")
_INSERT = Q(
    "INSERT INTO jobs (id, owner_id, model, status, provider, spec, created_at, updated_at, deadline_at, "
    "expected_seconds, progress, progress_source, idempotency_key, request_hash, request_id, next_run_at, quote, "
    "billing_state, is_byok, byok) VALUES (:id, :owner, :model, 'queued', :provider, :spec, :now, :now, :deadline, "
    ":expected, 0, 'estimate', :key, :hash, :request_id, :now, :quote, :billing_state, :is_byok, :byok) "
    "ON CONFLICT (owner_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING RETURNING *"
)
_DELETE = Q(
    "DELETE FROM jobs WHERE id = :id AND owner_id = :owner AND status IN ('completed','failed','cancelled','expired')"
)
_DELETE_EVENTS = Q("DELETE FROM events WHERE job_id = :id")
_STATS = Q("SELECT model, mean_seconds FROM model_stats")


class _IdempotencyRace(Exception):
    pass


def request_hash(body: bytes) -> str:
    canonical = orjson.dumps(orjson.loads(body), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()


class JobService:
    def __init__(
        self,
        db: Database,
        catalog: Catalog,
        bus: EventBus,
        providers: Providers,
        blobs: BlobStore,
        lifecycle: Lifecycle,
        *,
        secret: Secret | str,
        default_ttl: int = 900,
    ) -> None:
        self.db = db
        self.catalog = catalog
        self.bus = bus
        self.providers = providers
        self.blobs = blobs
        self.lifecycle = lifecycle
        self.secret = secret
        self.default_ttl = default_ttl
        self.expected: dict[str, float] = {}
        self.max_concurrent_jobs = 0
        self.space: DiskSpace | None = None  # refuses creates on a full disk, keeps room for deletes
        self.deadline_override = 0
        self.byok_fee = 0  # micro-dollars per output second on jobs that bring their own provider key
        self.box: SecretBox | None = None  # seals those keys in the job's row while it runs
        self.allow_http_urls = False  # plain http:// image and webhook URLs (where private URLs are allowed)
        self.wake_worker: Callable[[], None] = lambda: None
        self.on_cancel: Callable[[str], None] = lambda job_id: None
        self._lists: dict[tuple[int, bool, bool], Q] = {}

    async def load_stats(self) -> None:
        self.expected = {r["model"]: float(r["mean_seconds"]) for r in await self.db.fetchall(_STATS)}

    def view(self, job: JobView, base: str | None = None) -> Video:
        """The job as an answer shows it, its URLs on ``base`` (else the one it was created through)."""
        return render(job, secret=self.secret, now=now_ms(), ttl=self.default_ttl, base=base)

    async def row(self, owner: str, job_id: str) -> JobRecord:
        """The owner's job, every column."""
        return await self._one(_GET, job_id, owner)

    async def view_row(self, owner: str, job_id: str) -> JobView:
        """The columns a poll shows, for the owner's job only."""
        values = await self.db.fetchone_values(_VIEW, {"id": job_id, "owner": owner})
        if values is None:
            raise NotFoundError(f"no video {job_id}", param="video_id")
        return JobView.from_values(values)

    async def row_any_owner(self, job_id: str) -> JobRecord:
        """For signed links, whose signature already names the job."""
        return await self._one(_GET_ANY, job_id)

    async def _one(self, q: Q, job_id: str, owner: str | None = None) -> JobRecord:
        row = await self.db.fetchone(q, {"id": job_id, "owner": owner})
        if row is None:
            raise NotFoundError(f"no video {job_id}", param="video_id")
        return JobRecord.from_row(row)

    async def create(
        self,
        owner: str,
        body: bytes,
        *,
        idempotency_key: str | None,
        request_id: str,
        byok: dict[str, Secret] | None = None,
        base: str = "",
    ) -> tuple[JobRecord, bool]:
        """Validate, plan, price, hold and insert in one transaction; ``(job, created)``.

        With ``byok`` (the owner's own provider keys) the job may only run on those providers and
        is charged the gateway fee alone.
        """
        if self.space is not None:
            self.space.check()
        taken = await intake(
            self.db,
            self.catalog,
            self.providers,
            owner,
            body,
            byok=byok,
            allow_http=self.allow_http_urls,
            byok_fee=self.byok_fee,
        )
        spec, model, plan, quote = taken.spec, taken.model, taken.plan, taken.amount
        if base:  # the base of the create's URLs, for the job's events and webhooks
            spec = msgspec.structs.replace(spec, base_url=base)
        digest = request_hash(body)
        if idempotency_key is not None:
            if not 1 <= len(idempotency_key) <= 255:
                raise ValidationError("Idempotency-Key must be 1 to 255 characters", param="Idempotency-Key")
            if (existing := await self._replay(owner, idempotency_key, digest)) is not None:
                return existing, False
        now = now_ms()
        job_id = new_id("vid")
        if spec.webhook is not None:  # the row keeps the webhook's secret sealed, never in the clear
            spec = msgspec.structs.replace(spec, webhook=spec.webhook.sealed(self.box, job_id))
        params = {
            "id": job_id,
            "owner": owner,
            "model": model.id,
            "provider": plan.candidates[0].provider,
            "spec": encode_spec(spec),
            "now": now,
            "deadline": now + (self.deadline_override or model.deadline_seconds) * 1000,
            "expected": int(self.expected.get(model.id, model.expected_seconds)),
            "key": idempotency_key,
            "hash": digest,
            "request_id": request_id,
            "quote": quote,
            "billing_state": "held" if quote else "none",
            "is_byok": 1 if byok else 0,
            "byok": self._sealed(job_id, byok) if byok else None,
        }
        if self.db.dialect == "postgresql":  # one round trip, the account row locked only inside it
            created = await create_pg.insert(
                self.db, params, spec, secret=self.secret, default_cap=self.max_concurrent_jobs
            )
            if created.job is None:
                return await self._replayed(owner, idempotency_key, digest)
            self.bus.publish(created.event)
            self.wake_worker()
            return created.job, True
        try:
            async with self.db.transaction() as tx:
                row = await tx.fetchone(_INSERT, params)
                if row is None:
                    raise _IdempotencyRace
                job = JobRecord.from_row(row)
                await accounts.check_limits(tx, owner, quote, default_concurrency=self.max_concurrent_jobs)
                await ledger.hold(tx, owner, job.id, quote, model.id)
                event = await emit(
                    tx,
                    video=render(job, secret=self.secret, now=now),
                    owner_id=owner,
                    event_type="video.created",
                    now=now,
                    webhook=spec.webhook,
                )
        except _IdempotencyRace:
            return await self._replayed(owner, idempotency_key, digest)
        self.bus.publish(event)
        self.wake_worker()
        return job, True

    def _sealed(self, job_id: str, byok: dict[str, Secret]) -> str:
        """The request's own provider keys as the job's row keeps them: sealed, never in the clear."""
        if self.box is None:
            raise RuntimeError("JobService.box is not set: a request's own provider keys cannot be stored")
        return seal_keys(self.box, job_id, byok)

    async def _replayed(self, owner: str, key: str | None, digest: str) -> tuple[JobRecord, bool]:
        """The job another create with this key wrote while this one ran."""
        existing = await self._replay(owner, key or "", digest)
        if existing is None:
            raise ConflictError("a request with this Idempotency-Key is in flight; retry") from None
        return existing, False

    async def _replay(self, owner: str, key: str, digest: str) -> JobRecord | None:
        row = await self.db.fetchone(_BY_IDEMPOTENCY, {"owner": owner, "key": key})
        if row is None:
            return None
        job = JobRecord.from_row(row)
        if job.request_hash != digest:
            raise ConflictError("this Idempotency-Key was used with a different request body", param="Idempotency-Key")
        return job

    def _list_q(self, n_status: int, desc: bool, cursor: bool) -> Q:
        key = (n_status, desc, cursor)
        if key not in self._lists:
            where = ["owner_id = :owner"]
            if n_status:
                where.append("status IN (" + ", ".join(f":s{i}" for i in range(n_status)) + ")")
            if cursor:
                where.append("id < :after" if desc else "id > :after")
            order = "DESC" if desc else "ASC"
            self._lists[key] = Q(
                f"SELECT {VIEW_COLUMNS} FROM jobs WHERE {' AND '.join(where)} ORDER BY id {order} LIMIT :limit"
            )
        return self._lists[key]

    async def list(
        self, owner: str, *, status: str | None, limit: int, after: str | None, order: str, base: str | None = None
    ) -> VideoList:
        statuses: list[str] = []
        for raw in (status or "").split(","):
            raw = raw.strip().lower()
            if not raw:
                continue
            if raw not in STATUS_ALIASES:
                raise ValidationError(
                    f"unknown status {raw!r}; use {', '.join(sorted(STATUS_ALIASES))}", param="status"
                )
            if STATUS_ALIASES[raw] not in statuses:
                statuses.append(STATUS_ALIASES[raw])
        params: dict[str, Any] = {"owner": owner, "limit": limit + 1}
        params.update({f"s{i}": s for i, s in enumerate(statuses)})
        if after:
            params["after"] = after
        rows = await self.db.fetchall_values(self._list_q(len(statuses), order == "desc", bool(after)), params)
        now = now_ms()
        data = [
            render(JobView.from_values(r), secret=self.secret, now=now, ttl=self.default_ttl, base=base)
            for r in rows[:limit]
        ]
        return VideoList(
            data=data,
            has_more=len(rows) > limit,
            first_id=data[0].id if data else None,
            last_id=data[-1].id if data else None,
        )

    async def cancel(self, owner: str, job_id: str) -> JobRecord:
        job = await self.row(owner, job_id)
        if state.is_terminal(job.status):
            raise ConflictError(f"video {job_id} is already {job.status}", details={"status": job.status})
        # A job an upstream already runs keeps a schedule so the worker asks the upstream to stop.
        keep = bool(job.native_id) and job.provider != "vidgate"
        fields = {"cancel_requested": 1, "next_run_at": now_ms()} if keep else {"cancel_requested": 1}
        done = await self.lifecycle.transition(job_id, "cancel", fields=fields, keep_schedule=keep)
        if done is None:
            job = await self.row(owner, job_id)
            raise ConflictError(f"video {job_id} is already {job.status}", details={"status": job.status})
        self.on_cancel(job_id)
        return done

    async def delete(self, owner: str, job_id: str) -> VideoDeleted:
        job = await self.row(owner, job_id)
        if not state.is_terminal(job.status):
            raise ConflictError(
                f"video {job_id} is {job.status}; cancel it before deleting", details={"status": job.status}
            )
        keys = [key for out in job.outputs for key in out.object_keys()]

        async def remove() -> None:
            async with self.db.transaction() as tx:
                if await tx.execute(_DELETE, {"id": job_id, "owner": owner}) != 1:
                    raise NotFoundError(f"no video {job_id}", param="video_id")
                await tx.execute(_DELETE_EVENTS, {"id": job_id})
                await assets.forget(tx, job_id)
                await schedule_removal(tx, job_id, keys, now_ms())

        # A delete must work on a full disk, when it is the only way to free space.
        await (self.space.freeing(remove) if self.space is not None else remove())
        self.bus.publish_deleted(job_id)
        # The objects go after the row, whose transaction recorded them: a crash or an unreachable
        # store leaves them to the worker's retry sweep, never a job without bytes or a failed delete.
        await self.blobs.remove(keys)
        return VideoDeleted(id=job_id)
