"""Keeps a worker's leases alive while it works its jobs, and notices what changed under them.

One task for all of a worker's jobs rather than one per job: with thousands of upstream polls a
second, a task and a timer per poll were a visible share of the worker's CPU.
"""

from __future__ import annotations

import asyncio
import logging
import random

from vidgate.gateway.ids import now_ms
from vidgate.gateway.storage.db import Q
from vidgate.gateway.worker.context import WorkerContext

log = logging.getLogger("vidgate.worker")

_RENEW = Q("UPDATE jobs SET lease_until = :until WHERE id = :id AND lease_owner = :w")
_LEASED = Q("SELECT id, status FROM jobs WHERE lease_owner = :w")
MAX_RETRY_SECONDS = 300.0


def retry_delay(failures: int, base: float) -> float:
    """Seconds until a step that failed ``failures`` times in a row runs again: doubling from
    ``base``, capped, and spread by up to a quarter so jobs failing together do not retry together."""
    return min(MAX_RETRY_SECONDS, base * 2 ** min(max(failures, 1) - 1, 20)) * random.uniform(1.0, 1.25)


class LeaseKeeper:
    def __init__(self, ctx: WorkerContext) -> None:
        self.ctx = ctx
        self.deadlines: dict[str, int] = {}  # of the worker's running jobs

    async def run(self, stop: asyncio.Event) -> None:
        """Renew a third of a lease apart, or sooner when a running job's deadline comes first."""
        w = self.ctx
        while not stop.is_set():
            soonest = min(self.deadlines.values(), default=None)
            wait = w.settings.lease_seconds / 3
            if soonest is not None:
                wait = min(wait, max(0.05, (soonest - now_ms()) / 1000))
            await asyncio.sleep(wait)
            if not w.running:
                continue
            try:
                await self.renew()
            except Exception as exc:  # the database is down: the leases lapse and the jobs are claimed again
                log.warning("lease renewal failed (%s: %s)", type(exc).__name__, exc)

    async def renew(self) -> None:
        """Extend the running jobs' leases; flag those cancelled elsewhere and those past their deadline."""
        w = self.ctx
        # Only the jobs being worked: a lease left behind by a step that could not release it lapses.
        until = now_ms() + w.lease_ms
        async with w.db.transaction() as tx:
            for job_id in list(w.running):
                await tx.execute(_RENEW, {"id": job_id, "w": w.worker_id, "until": until})
        status = {r["id"]: r["status"] for r in await w.db.fetchall(_LEASED, {"w": w.worker_id})}
        now = now_ms()
        for job_id in list(w.running):
            if status.get(job_id, "cancelled") in ("cancelled", "expired", "failed"):
                w.cancelled.add(job_id)
            elif now > self.deadlines.get(job_id, now):
                w.cancelled.add(job_id)
                await w.expire(job_id)
