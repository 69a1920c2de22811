"""Every write that moves a job: guarded by status (and lease), with its ledger entry and event.

One transaction per step: the status change, the settle or void, and the event row commit
together or not at all, so a crash between steps never charges without a job or loses an event.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from vidgate.gateway.billing import ledger, settlement
from vidgate.gateway.catalog.catalog import Catalog
from vidgate.gateway.events.bus import EventBus
from vidgate.gateway.events.outbox import emit
from vidgate.gateway.ids import now_ms
from vidgate.gateway.jobs import state
from vidgate.gateway.jobs.records import JobRecord, JobView, column_json
from vidgate.gateway.jobs.views import render
from vidgate.gateway.secret import Secret
from vidgate.gateway.storage.db import Database, Q, Tx
from vidgate.types import JobEvent

log = logging.getLogger("vidgate.jobs")

JSON_FIELDS = frozenset({"error", "attempts", "outputs"})
# A write to any column the public view shows bumps ``version``, which a poll's ETag is made from.
VISIBLE = frozenset(JobView.__struct_fields__)
_RESCHEDULE = Q(
    "UPDATE jobs SET lease_owner = NULL, lease_until = NULL, next_run_at = :next, "
    "poll_failures = COALESCE(:failures, poll_failures) WHERE id = :id AND lease_owner = :lease"
)
_BILLING = Q("UPDATE jobs SET billing_state = :state, cost = :cost WHERE id = :id")
_STATS = Q(
    "INSERT INTO model_stats (model, mean_seconds, samples, updated_at) VALUES (:model, :secs, 1, :now) "
    "ON CONFLICT (model) DO UPDATE SET mean_seconds = (model_stats.mean_seconds * 4 + :secs) / 5, "
    "samples = model_stats.samples + 1, updated_at = :now"
)


class Lifecycle:
    def __init__(self, db: Database, catalog: Catalog, bus: EventBus, secret: Secret | str) -> None:
        self.db = db
        self.catalog = catalog
        self.bus = bus
        self.secret = secret
        self._updates: dict[tuple[Any, ...], Q] = {}
        self.byok_fee = 0

    def _update_q(self, fields: Sequence[str], sources: Sequence[str] | None, leased: bool) -> Q:
        key = (tuple(fields), tuple(sources or ()), leased)
        q = self._updates.get(key)
        if q is None:
            sets = ", ".join(f"{f} = :{f}" for f in fields)
            if VISIBLE.intersection(fields):
                sets += ", version = version + 1"
            where = "id = :id"
            if sources:
                where += " AND status IN (" + ", ".join(f"'{s}'" for s in sources) + ")"
            if leased:
                where += " AND lease_owner = :lease"
            q = self._updates[key] = Q(f"UPDATE jobs SET {sets} WHERE {where} RETURNING *")
        return q

    async def update(
        self,
        tx: Tx,
        job_id: str,
        fields: Mapping[str, Any],
        *,
        sources: Sequence[str] | None = None,
        lease: str | None = None,
    ) -> JobRecord | None:
        """Write ``fields`` (columns; the JSON ones as records) where the guards hold; the job after."""
        params = {k: column_json(v) if k in JSON_FIELDS else v for k, v in fields.items()}
        params["id"] = job_id
        if lease is not None:
            params["lease"] = lease
        q = self._update_q(sorted(fields), sources, lease is not None)
        row = await tx.fetchone(q, params)
        return None if row is None else JobRecord.from_row(row)

    async def _emit(
        self, tx: Tx, job: JobRecord, event_type: str, now: int, *, notify_webhook: bool = True
    ) -> JobEvent:
        return await emit(
            tx,
            video=render(job, secret=self.secret, now=now),
            owner_id=job.owner_id,
            event_type=event_type,
            now=now,
            webhook=job.spec.webhook if notify_webhook else None,
        )

    async def transition(
        self,
        job_id: str,
        happening: state.Happening,
        *,
        lease: str | None = None,
        fields: Mapping[str, Any] | None = None,
        produced_seconds: Sequence[float] | None = None,
        keep_schedule: bool = False,
    ) -> JobRecord | None:
        """Apply ``happening``; None when the job was not in a state it moves from (ignored)."""
        step = next(s for s in (state.advance(src, happening) for src in state.sources(happening)) if s)
        now = now_ms()
        values: dict[str, Any] = {"status": step.status, "updated_at": now}
        values.update(fields or {})
        if step.status in state.TERMINAL:
            values.setdefault("completed_at", now)
            values["lease_owner"] = None
            values["lease_until"] = None
            if not keep_schedule:
                values["next_run_at"] = None
                # The owner's own provider keys go with the last write that needs them: this one, or
                # the worker's upstream clean-up when a schedule is kept for it.
                values["byok"] = None
        if happening == "done":
            values.update(progress=100, progress_source=values.get("progress_source", "final"))
        event: JobEvent | None = None
        async with self.db.transaction() as tx:
            job = await self.update(tx, job_id, values, sources=state.sources(happening), lease=lease)
            if job is None:
                log.info("ignored %s for %s: not in a state it moves from", happening, job_id)
                return None
            job = await self._settle_or_void(tx, job, step.ledger, produced_seconds, now)
            event = await self._emit(tx, job, step.event, now)
        self.bus.publish(event)
        return job

    async def _settle_or_void(
        self, tx: Tx, job: JobRecord, action: state.LedgerAction, produced: Sequence[float] | None, now: int
    ) -> JobRecord:
        if action is None:
            return job
        if action == "settle":
            done = settlement.settle(
                job.quote,
                job.spec,
                produced,
                model=self.catalog.get(job.model),
                provider=job.provider,
                byok_fee=self.byok_fee if job.is_byok else None,
            )
            await ledger.settle(tx, job.owner_id, job.id, done.held, done.charge, job.model)
            if job.started_at is not None:
                secs = max(1, (now - job.started_at) // 1000)
                await tx.execute(_STATS, {"model": job.model, "secs": secs, "now": now})
        else:
            done = settlement.void(job.quote)
            await ledger.void(tx, job.owner_id, job.id, done.held, job.model, job.status)
        await tx.execute(_BILLING, {"state": done.state, "cost": done.charge, "id": job.id})
        return msgspec.structs.replace(job, billing_state=done.state, cost=done.charge)

    async def progress(self, job_id: str, lease: str, progress: int, source: str, *, crossed_step: bool) -> bool:
        """Record progress; webhooks hear of it only when it crosses a 10% step."""
        now = now_ms()
        event: JobEvent | None = None
        async with self.db.transaction() as tx:
            job = await self.update(
                tx,
                job_id,
                {"progress": progress, "progress_source": source, "updated_at": now},
                sources=("processing",),
                lease=lease,
            )
            if job is not None:
                event = await self._emit(tx, job, "video.progress", now, notify_webhook=crossed_step)
        if event is None:
            return False
        self.bus.publish(event)
        return True

    async def reschedule(self, job_id: str, lease: str, *, next_run_at: int, failures: int | None) -> None:
        """Release a job to run again at ``next_run_at``: the worker's commonest write (after every
        upstream poll), so it returns no row."""
        async with self.db.transaction() as tx:
            await tx.execute(_RESCHEDULE, {"id": job_id, "lease": lease, "next": next_run_at, "failures": failures})

    async def set_fields(
        self, job_id: str, fields: Mapping[str, Any], *, lease: str | None = None, sources: Sequence[str] | None = None
    ) -> JobRecord | None:
        """A write that changes no status (attempts, schedule, lease release)."""
        async with self.db.transaction() as tx:
            return await self.update(tx, job_id, fields, sources=sources, lease=lease)
