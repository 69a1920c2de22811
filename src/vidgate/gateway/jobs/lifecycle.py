"""Every write that moves a job: guarded by status (and lease), with its ledger entry and event.

One transaction per step: the status change, the settle or void, and the event row commit
together or not at all, so a crash between steps never charges without a job or loses an event.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from vidgate.gateway.billing import ledger, pricing
from vidgate.gateway.catalog.catalog import Catalog
from vidgate.gateway.events.bus import EventBus
from vidgate.gateway.events.outbox import emit
from vidgate.gateway.ids import now_ms
from vidgate.gateway.jobs import state
from vidgate.gateway.jobs.views import render
from vidgate.gateway.secret import Secret
from vidgate.gateway.storage.db import Database, Q, Row, Tx
from vidgate.types import JobEvent

log = logging.getLogger("vidgate.jobs")

JSON_FIELDS = frozenset({"error", "attempts", "outputs"})
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


def dumps(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


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
    ) -> Row | None:
        params = {k: dumps(v) if k in JSON_FIELDS else v for k, v in fields.items()}
        params["id"] = job_id
        if lease is not None:
            params["lease"] = lease
        q = self._update_q(sorted(fields), sources, lease is not None)
        return await tx.fetchone(q, params)

    async def _emit(self, tx: Tx, row: Row, event_type: str, now: int, *, notify_webhook: bool = True) -> JobEvent:
        spec = orjson.loads(row["spec"])
        video = render(row, secret=self.secret, now=now)
        return await emit(
            tx,
            video=video,
            owner_id=row["owner_id"],
            event_type=event_type,
            now=now,
            webhook=spec.get("webhook") if notify_webhook else None,
        )

    async def transition(
        self,
        job_id: str,
        happening: state.Happening,
        *,
        lease: str | None = None,
        fields: Mapping[str, Any] | None = None,
        produced_seconds: list[float] | None = None,
        keep_schedule: bool = False,
    ) -> Row | None:
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
            row = await self.update(tx, job_id, values, sources=state.sources(happening), lease=lease)
            if row is None:
                log.info("ignored %s for %s: not in a state it moves from", happening, job_id)
                return None
            row = await self._settle_or_void(tx, row, step.ledger, produced_seconds, now)
            event = await self._emit(tx, row, step.event, now)
        self.bus.publish(event)
        return row

    async def _settle_or_void(
        self, tx: Tx, row: Row, action: state.LedgerAction, produced: list[float] | None, now: int
    ) -> Row:
        if action is None:
            return row
        model = self.catalog.get(row["model"])
        held = row["quote"]
        if action == "settle":
            spec = orjson.loads(row["spec"])
            cost = 0
            if row["is_byok"]:
                cost = pricing.byok_cost(
                    self.byok_fee, produced or [float(spec["duration"])] * spec["sample_count"], held
                )
            elif model is not None:
                cost = pricing.actual_cost(
                    model,
                    produced_seconds=produced or [float(spec["duration"])] * spec["sample_count"],
                    resolution=spec.get("resolution"),
                    audio=spec["audio"],
                    held=held,
                    size=f"{spec['width']}x{spec['height']}",
                    provider=row["provider"],
                )
            await ledger.settle(tx, row["owner_id"], row["id"], held, cost, row["model"])
            if row["started_at"] is not None:
                secs = max(1, (now - row["started_at"]) // 1000)
                await tx.execute(_STATS, {"model": row["model"], "secs": secs, "now": now})
            new_state, new_cost = "settled", cost
        else:
            await ledger.void(tx, row["owner_id"], row["id"], held, row["model"], row["status"])
            new_state, new_cost = "void", 0
        await tx.execute(_BILLING, {"state": new_state, "cost": new_cost, "id": row["id"]})
        out = dict(row)
        out.update(billing_state=new_state, cost=new_cost)
        return out

    async def progress(self, job_id: str, lease: str, progress: int, source: str, *, crossed_step: bool) -> bool:
        """Record progress; webhooks hear of it only when it crosses a 10% step."""
        now = now_ms()
        event: JobEvent | None = None
        async with self.db.transaction() as tx:
            row = await self.update(
                tx,
                job_id,
                {"progress": progress, "progress_source": source, "updated_at": now},
                sources=("processing",),
                lease=lease,
            )
            if row is not None:
                event = await self._emit(tx, row, "video.progress", now, notify_webhook=crossed_step)
        if event is None:
            return False
        self.bus.publish(event)
        return True

    async def reschedule(self, job_id: str, lease: str, *, next_run_at: int, failures: int | None) -> None:
        """Release a job to run again at ``next_run_at``: the worker's commonest write (after every
        upstream poll), so it returns no row."""
        async with self.db.transaction() as tx:
            await tx.execute(
                _RESCHEDULE, {"id": job_id, "lease": lease, "next": next_run_at, "failures": failures}
            )

    async def set_fields(
        self, job_id: str, fields: Mapping[str, Any], *, lease: str | None = None, sources: Sequence[str] | None = None
    ) -> Row | None:
        """A write that changes no status (attempts, schedule, lease release)."""
        async with self.db.transaction() as tx:
            return await self.update(tx, job_id, fields, sources=sources, lease=lease)
