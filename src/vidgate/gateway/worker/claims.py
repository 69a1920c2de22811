"""What a worker claims when it has free slots: due polls, then queued work shared fairly by owner.

Queued work is claimed round-robin: first the oldest due job of each owner (per provider), owners
taken in turn from where this worker's last claim stopped, and only then more of the oldest due
work. So however long one key's backlog, another key's first job takes the next free slot in turn
with the other keys waiting; for a built-in render, the next render thread that frees up.

Built-in renders use this machine's CPU, so they get more care: a worker claims no more of them
than it has render threads free (a claimed render would otherwise wait in the thread pool's queue,
behind a backlog the database can no longer reorder), a key runs at most ``max_renders_per_key``
of them at once across every worker, and none start while the disk is full.

Each claim is one statement. The owners with queued work are found by skipping through an index
from one (provider, owner) to the next, so its cost follows the number of owners waiting, not the
length of anyone's backlog (about 0.3 ms behind a backlog of 100,000 jobs on either database).
"""

from __future__ import annotations

from typing import Any

from vidgate.gateway.ids import now_ms
from vidgate.gateway.jobs.records import JobRecord
from vidgate.gateway.storage.db import Q, Tx
from vidgate.gateway.storage.space import DiskSpace
from vidgate.gateway.worker.context import WorkerContext

LOCAL = "vidgate"  # the built-in provider, which renders in this process
NO_LIMIT = 1 << 30

_CLAIM_POLLS_SQL = (
    "UPDATE jobs SET lease_owner = :w, lease_until = :until WHERE id IN (SELECT id FROM jobs "
    "WHERE status = 'processing' AND next_run_at <= :now AND (lease_until IS NULL OR lease_until < :now) "
    "ORDER BY next_run_at LIMIT :n{lock}) RETURNING *"
)
# Polls of accepted jobs are claimed apart from the rest: a burst of new jobs, all due before any
# poll, would otherwise hold every poll back until the last one was submitted.
_CLAIM_POLLS = Q(_CLAIM_POLLS_SQL.format(lock=""), pg=_CLAIM_POLLS_SQL.format(lock=" FOR UPDATE SKIP LOCKED"))

_NEXT_DUE = Q("SELECT MIN(next_run_at) AS due FROM jobs WHERE next_run_at IS NOT NULL")
_NEXT_LATER = Q("SELECT MIN(next_run_at) AS due FROM jobs WHERE next_run_at > :now")

_QUEUED = "status = 'queued'"
_FAIR_SQL = f"""
WITH RECURSIVE
  heads(p, o) AS (
    SELECT provider, owner_id FROM jobs WHERE id = (
      SELECT id FROM {{queue}} WHERE {_QUEUED} ORDER BY provider, owner_id LIMIT 1
    )
    UNION ALL
    SELECT j.provider, j.owner_id FROM heads h JOIN jobs j ON j.id = {{next_head}}
  ),
  firsts(p, o, id) AS MATERIALIZED (
    SELECT h.p, h.o, (
      SELECT id FROM {{queue}} WHERE {_QUEUED} AND provider = h.p AND owner_id = h.o
      AND COALESCE(next_run_at, CAST(:now AS BIGINT) + 1) <= :now AND (lease_until IS NULL OR lease_until < :now)
      ORDER BY next_run_at, id LIMIT 1
    ) FROM heads h
    WHERE (h.p <> '{LOCAL}' OR (
      SELECT COUNT(*) FROM jobs WHERE owner_id = h.o AND provider = '{LOCAL}' AND lease_until IS NOT NULL
      AND lease_until >= :now
    ) < :per_key)
  ),
  ranked AS (
    SELECT id, p,
      ROW_NUMBER() OVER (ORDER BY CASE WHEN o > :after THEN 0 ELSE 1 END, o, p) AS pos,
      ROW_NUMBER() OVER (
        PARTITION BY p = '{LOCAL}' ORDER BY CASE WHEN o > :after_local THEN 0 ELSE 1 END, o
      ) AS nth
    FROM firsts WHERE id IS NOT NULL
  ),
  picks AS (SELECT id, pos FROM ranked WHERE p <> '{LOCAL}' OR nth <= :renders),
  rest AS (
    SELECT id, ROW_NUMBER() OVER (ORDER BY next_run_at, id) AS pos FROM (
      SELECT id, status, provider, next_run_at FROM jobs WHERE status <> 'processing' AND next_run_at <= :now
      AND (lease_until IS NULL OR lease_until < :now) ORDER BY next_run_at LIMIT :n
    ) oldest
    WHERE NOT (status = 'queued' AND provider = '{LOCAL}') AND id NOT IN (SELECT id FROM picks)
  ),
  chosen AS (SELECT id, 0 AS tier, pos FROM picks UNION ALL SELECT id, 1 AS tier, pos FROM rest)
UPDATE jobs SET lease_owner = :w, lease_until = :until WHERE id IN ({{pick}}) RETURNING *
"""
_NEXT = "(SELECT id FROM {queue} WHERE " + _QUEUED + " AND {where} ORDER BY provider, owner_id LIMIT 1)"
# SQLite's planner, without statistics, would walk every queued job for the skip-scan, so it is told
# the index, and it seeks on a row value's first column only, so the step is spelt in two seeks.
_SQLITE_QUEUE = "jobs INDEXED BY ix_jobs_queue"
_SQLITE_NEXT = (
    f"COALESCE({_NEXT.format(queue=_SQLITE_QUEUE, where='provider = h.p AND owner_id > h.o')}, "
    f"{_NEXT.format(queue=_SQLITE_QUEUE, where='provider > h.p')})"
)
# Built-in renders are claimed only as first jobs of their owner, never from the oldest-first rest.
_CLAIM_QUEUED = Q(
    _FAIR_SQL.format(
        queue=_SQLITE_QUEUE, next_head=_SQLITE_NEXT, pick="SELECT id FROM chosen ORDER BY tier, pos LIMIT :n"
    ),
    pg=_FAIR_SQL.format(
        queue="jobs",
        next_head=_NEXT.format(queue="jobs", where="(provider, owner_id) > (h.p, h.o)"),
        pick="SELECT j.id FROM (SELECT id, tier, pos FROM chosen ORDER BY tier, pos LIMIT :n) c "
        "JOIN jobs j ON j.id = c.id WHERE j.lease_until IS NULL OR j.lease_until < :now "
        "ORDER BY c.tier, c.pos FOR UPDATE OF j SKIP LOCKED",
    ),
)


def _last_in_turn(owners: list[str], after: str) -> str:
    """The owner furthest along the circle that starts just after ``after``: the next turn starts past it."""
    return max(owners, key=lambda o: (o <= after, o)) if owners else after


class Claims:
    """One worker's claims, with the round-robin positions and render slots they depend on."""

    def __init__(self, ctx: WorkerContext) -> None:
        self.ctx = ctx
        s = ctx.settings
        self.space = DiskSpace.for_storage(
            s.database_url, ctx.blobs.root, reserve_bytes=s.disk_reserve_bytes, min_free_bytes=s.disk_min_free_bytes
        )
        self.renders: set[str] = set()  # the built-in renders this worker runs now
        self.after = ""  # the owner served last: the next turn starts after it
        self.after_local = ""
        self.empty = False  # the last claim found nothing it could take

    @property
    def render_slots(self) -> int:
        config = self.ctx.providers.configs.get(LOCAL)
        return config.max_concurrency if config is not None and config.enabled else 0

    async def claim(self, tx: Tx, now: int, free: int) -> list[JobRecord]:
        """Lease up to ``free`` due jobs to this worker."""
        w = self.ctx
        params: dict[str, Any] = {"w": w.worker_id, "until": now + w.lease_ms, "now": now}
        # A quarter of the free slots stay for new jobs, so polls cannot starve submits either.
        jobs = [JobRecord.from_row(r) for r in await tx.fetchall(_CLAIM_POLLS, {**params, "n": free - free // 4})]
        renders = 0 if self.space.full else max(0, self.render_slots - len(self.renders))
        per_key = w.settings.max_renders_per_key or NO_LIMIT
        rows = await tx.fetchall(
            _CLAIM_QUEUED,
            {
                **params,
                "n": free - len(jobs),
                "renders": renders,
                "per_key": per_key,
                "after": self.after,
                "after_local": self.after_local,
            },
        )
        queued = [JobRecord.from_row(r) for r in rows]
        local = [j.owner_id for j in queued if j.provider == LOCAL and j.status == "queued"]
        remote = [j.owner_id for j in queued if j.provider != LOCAL and j.status == "queued"]
        self.after_local = _last_in_turn(local, self.after_local)
        self.after = _last_in_turn(remote, self.after)
        jobs += queued
        self.empty = not jobs
        self.renders.update(j.id for j in jobs if j.provider == LOCAL and j.status in ("queued", "processing"))
        return jobs

    def done(self, job_id: str) -> None:
        if job_id in self.renders:
            self.renders.discard(job_id)
            self.ctx.wake()  # a render thread is free: the next key in turn may start now

    async def next_due(self) -> int | None:
        """When work is next due. After a claim that found nothing it could take, what is due already
        waits for a render or a key's turn to free up (this worker is woken for those, others' within
        a second), so only what comes due later counts: no claim is repeated every few milliseconds."""
        db = self.ctx.db
        row = await (db.fetchone(_NEXT_LATER, {"now": now_ms()}) if self.empty else db.fetchone(_NEXT_DUE))
        return None if row is None else row["due"]
