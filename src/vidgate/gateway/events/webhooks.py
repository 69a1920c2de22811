"""Webhook delivery: signed twice (Standard Webhooks and the reference's ``x-phaseo-*`` headers),
retries with backoff, a delivery log, and the job's delivery summary.

A job's own secret sits sealed in its spec and is opened only here, per attempt; a webhook given
without one is delivered unsigned. Delivery rows are queued by the outbox in the job's own
transaction; the deliverer claims due rows with a lease, so a crash mid-send only delays a delivery
and another process may take it over. The ``webhook-id`` (and ``x-phaseo-event-id``) header is the
event id on every attempt, so receivers can deduplicate. Each attempt is folded into the job's
``webhook_state`` in the transaction that records it, so the job's view shows it without a second
read; that moves the job's version, so long polls held on the job are woken (``changed`` in this
process, a notification for the others) though no lifecycle event is sent.

Receivers are independent: each endpoint (scheme, host, port) has a few slots per process, and a
row claimed for a full endpoint is parked (its next attempt moved past the time a slot should
free up, with no attempt counted) and started as soon as one of that endpoint's sends ends, so a
receiver that hangs holds its own slots and never the others'. Every attempt, whatever goes
wrong in it, is recorded and backed off; none is retried at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import orjson

from vidgate.gateway.events import webhook_state
from vidgate.gateway.events.outbox import CHANNEL, JOB_CHANGED, NOTIFY_ORIGIN
from vidgate.gateway.events.signatures import Attempt, signed_headers
from vidgate.gateway.events.webhook_endpoints import EndpointRecord, Endpoints
from vidgate.gateway.events.webhook_send import Sent, post, sender
from vidgate.gateway.events.webhook_state import MAX_ATTEMPTS
from vidgate.gateway.ids import now_ms
from vidgate.gateway.jobs.spec import decode_spec
from vidgate.gateway.secret import Secret
from vidgate.gateway.settings import Settings
from vidgate.gateway.storage.db import Database, Q, Row, Tx
from vidgate.types import JobEvent

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("vidgate.webhooks")

BATCH = 64  # deliveries in flight per process, over all endpoints
# A delivery held by a process that died is retried once its lease runs out, so the lease is only a
# little longer than one attempt may take (``webhook_timeout_seconds``, 10 s by default).
LEASE_MARGIN_MS = 5_000
LEASE_MS = 15_000  # with the default attempt timeout
MAX_BACKOFF_SECONDS = 3600.0
MAX_PARK_SECONDS = 600.0
UNEXPECTED = "not sent: the delivery failed unexpectedly"
GIVE_UP_MS = 24 * 3600 * 1000  # after the delivery was queued
IDLE_SECONDS = 1.0  # fallback wake-up for retries due later and rows other processes queued
LOG_LIMIT = 50

_CLAIM = Q(
    "UPDATE webhook_deliveries SET lease_until = :until WHERE id IN (SELECT id FROM webhook_deliveries "
    "WHERE status = 'pending' AND next_attempt_at <= :now AND (lease_until IS NULL OR lease_until < :now) "
    "ORDER BY next_attempt_at LIMIT :n) RETURNING *",
    pg="UPDATE webhook_deliveries SET lease_until = :until WHERE id IN (SELECT id FROM webhook_deliveries "
    "WHERE status = 'pending' AND next_attempt_at <= :now AND (lease_until IS NULL OR lease_until < :now) "
    "ORDER BY next_attempt_at LIMIT :n FOR UPDATE SKIP LOCKED) RETURNING *",
)
# When the next row becomes claimable: its due time, or later while another attempt holds its lease.
_NEXT_DUE = Q(
    "SELECT MIN(CASE WHEN lease_until > next_attempt_at THEN lease_until ELSE next_attempt_at END) AS due "
    "FROM webhook_deliveries WHERE next_attempt_at IS NOT NULL"
)
_EVENT = Q("SELECT id, type, created_at, data FROM events WHERE id = :id")
_JOB_SPEC = Q("SELECT spec FROM jobs WHERE id = :id")
_EVENT_TYPE = Q("SELECT type FROM events WHERE id = :id")
# The job's delivery summary, locked first (then the delivery row), the order the outbox takes them in.
_JOB_STATE = Q(
    "SELECT webhook_state FROM jobs WHERE id = :id", pg="SELECT webhook_state FROM jobs WHERE id = :id FOR UPDATE"
)
_SET_JOB_STATE = Q("UPDATE jobs SET webhook_state = :state, version = version + 1 WHERE id = :id")
# Other processes' long polls on the job hear of the new version at commit (PostgreSQL only).
_NOTIFY_CHANGED = Q("SELECT :payload", pg=f"SELECT pg_notify('{CHANNEL}', :payload)")
_RECORD = Q(
    "UPDATE webhook_deliveries SET status = :status, attempts = :attempts, next_attempt_at = :next, "
    "lease_until = NULL, last_status_code = :code, last_error = :error, log = :log, delivered_at = :delivered "
    "WHERE id = :id"
)
_RELEASE = Q("UPDATE webhook_deliveries SET lease_until = NULL WHERE id = :id")
_PARK = Q("UPDATE webhook_deliveries SET next_attempt_at = :next, lease_until = NULL WHERE id = :id")
# A parked row, unless something else has had it since (attempted, rescheduled, finished).
_RECALL = Q(
    "UPDATE webhook_deliveries SET lease_until = :until WHERE id = :id AND status = 'pending' "
    "AND next_attempt_at = :parked AND (lease_until IS NULL OR lease_until < :now) RETURNING *"
)
_LIST = Q(
    "SELECT d.*, e.type AS event_type FROM webhook_deliveries d LEFT JOIN events e ON e.id = d.event_id "
    "WHERE d.job_id = :job AND d.owner_id = :owner ORDER BY d.created_at, d.id"
)
_GET = Q(
    "SELECT d.*, e.type AS event_type FROM webhook_deliveries d LEFT JOIN events e ON e.id = d.event_id "
    "WHERE d.id = :id AND d.job_id = :job AND d.owner_id = :owner"
)
_REQUEUE = Q(
    "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = :now "
    "WHERE id = :id AND job_id = :job AND owner_id = :owner"
)


class _Permanent(Exception):
    """A delivery that no retry can fix (blocked URL, event or webhook gone)."""


def backoff_seconds(attempts: int, base: float) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(2**attempts * base, 1 h)]."""
    return random.uniform(0, min(2 ** min(attempts, 32) * base, MAX_BACKOFF_SECONDS))


def endpoint_of(url: str) -> str:
    """The receiver a URL reaches (scheme, host, port); a URL that does not parse is its own endpoint."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return url
    scheme = parts.scheme.lower()
    return f"{scheme}://{parts.hostname or ''}:{port or {'https': 443, 'http': 80}.get(scheme, 0)}"


class Deliverer:
    """Sends due webhook deliveries; an event sink woken by every bus publish, with a short fallback sleep."""

    def __init__(self, db: Database, settings: Settings, changed: Callable[[str], None] = lambda job_id: None) -> None:
        self.db = db
        self.changed = changed  # told the id of each job whose delivery summary moved, after commit
        self.settings = settings
        self.box = settings.secret_box  # opens the jobs' own secrets and the endpoints'
        self.endpoints = Endpoints(db, self.box, allow_http=settings.allow_private_urls)
        self.attempt_seconds = settings.webhook_timeout_seconds
        self.lease_ms = int(self.attempt_seconds * 1000) + LEASE_MARGIN_MS
        self.per_endpoint = max(1, settings.webhook_max_in_flight_per_endpoint)
        self.http: httpx.AsyncClient = sender(settings)
        self.running: dict[str, asyncio.Task[None]] = {}
        self.in_flight: Counter[str] = Counter()
        # Rows parked per endpoint, oldest first: delivery id -> the next_attempt_at it was parked at.
        self.parked: dict[str, dict[str, int]] = {}
        self._wake = asyncio.Event()

    def publish(self, event: JobEvent) -> None:
        """A committed event may have queued deliveries (in its own transaction): look now."""
        self.wake()

    def wake(self) -> None:
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop`` is set, then hand back the leases of unfinished attempts."""
        stopper = asyncio.ensure_future(stop.wait())
        stopper.add_done_callback(lambda _: self.wake())
        try:
            while not stop.is_set():
                self._wake.clear()
                try:
                    wait = await self._tick()
                except Exception:
                    log.exception("webhook tick failed; backing off")
                    wait = IDLE_SECONDS
                if wait > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), timeout=wait)
        finally:
            stopper.cancel()
            unfinished = list(self.running)
            for task in self.running.values():
                task.cancel()
            await asyncio.gather(*self.running.values(), return_exceptions=True)
            with contextlib.suppress(Exception):
                async with self.db.transaction() as tx:
                    for delivery_id in unfinished:
                        await tx.execute(_RELEASE, {"id": delivery_id})
            await self.http.aclose()

    async def _tick(self) -> float:
        """Claim and start what is due; how long to sleep before looking again."""
        free = BATCH - len(self.running)
        if free > 0 and self.parked:
            free -= await self._recall(free)
        if free <= 0:
            return IDLE_SECONDS  # a finishing delivery wakes the loop
        # A cheap read first: every bus publish wakes this loop, and most find nothing due.
        row = await self.db.fetchone(_NEXT_DUE)
        now = now_ms()
        if row is None or row["due"] is None:
            return IDLE_SECONDS
        if row["due"] > now:
            return min(IDLE_SECONDS, (row["due"] - now) / 1000)
        async with self.db.transaction() as tx:
            rows = await tx.fetchall(_CLAIM, {"until": now + self.lease_ms, "now": now, "n": free})
        full: list[tuple[Row, str]] = []
        for row in rows:
            endpoint = endpoint_of(row["url"])
            if self.in_flight[endpoint] < self.per_endpoint:
                self._start(row, endpoint)
            else:
                full.append((row, endpoint))
        if full:
            await self._park(full, now)
        return 0 if rows else 0.05

    def _start(self, row: Row, endpoint: str) -> None:
        if (waiting := self.parked.get(endpoint)) is not None:
            waiting.pop(row["id"], None)
        self.in_flight[endpoint] += 1
        self.running[row["id"]] = asyncio.create_task(self._deliver(row, endpoint), name=f"webhook {row['id']}")

    async def _park(self, rows: list[tuple[Row, str]], now: int) -> None:
        """Hand rows for full endpoints back, due once a slot there should have freed up for them."""
        async with self.db.transaction() as tx:
            for row, endpoint in rows:
                waiting = self.parked.setdefault(endpoint, {})
                waiting.pop(row["id"], None)
                # Each attempt ahead of it in the queue holds a slot for at most one attempt timeout.
                rounds = len(waiting) // self.per_endpoint + 1
                seconds = min(rounds * self.attempt_seconds, MAX_PARK_SECONDS) * random.uniform(1.0, 1.5)
                until = now + int(seconds * 1000)
                await tx.execute(_PARK, {"id": row["id"], "next": until})
                waiting[row["id"]] = until

    async def _recall(self, free: int) -> int:
        """Start parked rows whose endpoint has a free slot again; how many were started."""
        started = 0
        for endpoint, waiting in list(self.parked.items()):
            while waiting and started < free and self.in_flight[endpoint] < self.per_endpoint:
                delivery_id, parked = next(iter(waiting.items()))
                del waiting[delivery_id]
                now = now_ms()
                params = {"id": delivery_id, "until": now + self.lease_ms, "now": now, "parked": parked}
                async with self.db.transaction() as tx:
                    row = await tx.fetchone(_RECALL, params)
                if row is not None:
                    self._start(row, endpoint)
                    started += 1
            if not waiting:
                del self.parked[endpoint]
        return started

    async def _deliver(self, row: Row, endpoint: str) -> None:
        try:
            await self.attempt(row)
        except asyncio.CancelledError:
            raise
        except Exception:
            # Recording the attempt failed (the database, most likely). The lease is kept: it runs
            # out and the delivery is retried then, not at once.
            log.exception("webhook delivery %s: recording the attempt failed", row["id"])
        finally:
            self.running.pop(row["id"], None)
            self.in_flight[endpoint] -= 1
            if self.in_flight[endpoint] <= 0:
                del self.in_flight[endpoint]
            self.wake()

    async def attempt(self, row: Row) -> None:
        """Send one delivery once and record the outcome (delivered, retry later, or failed)."""
        started = time.monotonic()
        try:
            url, body, headers = await self._request(row)
            sent = await post(
                self.http,
                url,
                body,
                headers,
                seconds=self.attempt_seconds,
                allow_private=self.settings.allow_private_urls,
            )
        except _Permanent as exc:
            sent = Sent(error=f"not sent: {exc}", permanent=True)
        except Exception:
            # A URL that does not parse, a secret that does not open, a bug: a failed attempt like
            # any other, backed off, so it can never spin; the details go to the log, not the API.
            log.exception("webhook delivery %s failed unexpectedly", row["id"])
            sent = Sent(error=UNEXPECTED)
        await self._record(row, sent, latency_ms=int((time.monotonic() - started) * 1000))

    async def _request(self, row: Row) -> tuple[str, bytes, dict[str, str]]:
        event = await self.db.fetchone(_EVENT, {"id": row["event_id"]})
        if event is None:
            raise _Permanent("the event no longer exists (the video was deleted)")
        job = await self.db.fetchone(_JOB_SPEC, {"id": row["job_id"]})
        hook = decode_spec(job["spec"]).webhook if job is not None else None
        if hook is None:
            raise _Permanent("the video no longer has a webhook")
        url = row["url"]
        if hook.endpoint_id:
            endpoint = await self.endpoints.for_delivery(row["owner_id"], hook.endpoint_id)
            url, secrets = self._endpoint_target(endpoint)
        else:
            # Opened here only, for this attempt; a webhook given without a secret goes unsigned.
            own = hook.signing_secret(self.box, row["job_id"])
            secrets = [own] if own else []
        body = orjson.dumps(
            {
                "id": event["id"],
                "type": event["type"],
                "created_at": event["created_at"] // 1000,
                "data": orjson.Fragment(event["data"]),
            }
        )
        attempt = Attempt(event["id"], event["type"], row["attempts"] + 1, MAX_ATTEMPTS, row["id"])
        return url, body, signed_headers(body, secrets, attempt)

    def _endpoint_target(self, endpoint: EndpointRecord | None) -> tuple[str, list[Secret]]:
        """Where a job sent to an endpoint goes now (its url may have changed), and what signs it."""
        if endpoint is None or endpoint.status == "deleted":
            raise _Permanent("the webhook endpoint was deleted")
        if endpoint.status != "active":
            raise _Permanent(f"the webhook endpoint is {endpoint.status}")
        return endpoint.url, self.endpoints.signing_secrets(endpoint, now_ms())

    async def _record(self, row: Row, sent: Sent, latency_ms: int) -> None:
        now = now_ms()
        attempts = row["attempts"] + 1
        error = sent.error
        try:
            entries = orjson.loads(row["log"] or "[]")
        except orjson.JSONDecodeError:
            entries = []
        if not isinstance(entries, list):
            entries = []
        entries.append({"at": now // 1000, "status_code": sent.code, "latency_ms": latency_ms, "error": error})
        params: dict[str, Any] = {
            "id": row["id"],
            "attempts": attempts,
            "code": sent.code,
            "error": error,
            "delivered": None,
            "log": orjson.dumps(entries[-LOG_LIMIT:]).decode(),
            "next": None,
        }
        if error is None:
            params.update(status="delivered", delivered=now)
        elif sent.permanent:
            params.update(status="failed")
        else:
            due = now + int(backoff_seconds(attempts, self.settings.webhook_backoff_base_seconds) * 1000)
            if due > row["created_at"] + GIVE_UP_MS:
                params.update(status="failed", error=f"{error}; gave up after {attempts} attempts over 24 h")
            elif attempts >= MAX_ATTEMPTS:
                params.update(status="failed", error=f"{error}; gave up after {attempts} attempts")
            else:
                params.update(status="pending", next=due)
        async with self.db.transaction() as tx:
            folded = await _fold_into_job(tx, row, params, sent.code, sent.preview, now)
            await tx.execute(_RECORD, params)
        if folded:
            self.changed(row["job_id"])
        if error is not None:
            log.info("webhook %s to %s: %s (%s)", row["id"], row["url"], params["error"], params["status"])


_ATTEMPT_STATUS: dict[str, webhook_state.AttemptStatus] = {
    "delivered": "delivered",
    "pending": "scheduled_retry",
    "failed": "failed_permanently",
}


async def _fold_into_job(
    tx: Tx, row: Row, params: dict[str, Any], code: int | None, preview: str | None, now: int
) -> bool:
    """Add the attempt to the job's delivery summary; False when the job (or its event) was deleted
    meanwhile and there is none to update."""
    job = await tx.fetchone(_JOB_STATE, {"id": row["job_id"]})
    event = await tx.fetchone(_EVENT_TYPE, {"id": row["event_id"]})
    if job is None or event is None:
        return False
    summary = webhook_state.record(
        webhook_state.decode_summary(job["webhook_state"]),
        delivery_id=row["id"],
        event_type=event["type"],
        status=_ATTEMPT_STATUS[params["status"]],
        number=params["attempts"],
        at=now,
        next_at=params["next"],
        code=code,
        error=params["error"],
        preview=preview,
    )
    await tx.execute(_SET_JOB_STATE, {"id": row["job_id"], "state": webhook_state.encode_summary(summary)})
    if tx.dialect == "postgresql":
        await tx.fetchone(_NOTIFY_CHANGED, {"payload": f"{row['job_id']} {JOB_CHANGED} {NOTIFY_ORIGIN}"})
    return True


# ---- the delivery log -------------------------------------------------------------------------


async def deliveries(db: Database, job_id: str, owner: str) -> Sequence[Row]:
    """The job's deliveries, oldest first, with their event's type."""
    return await db.fetchall(_LIST, {"job": job_id, "owner": owner})


async def requeue(db: Database, delivery_id: str, job_id: str, owner: str) -> Row | None:
    """Make a delivery due now, whatever its status; the row as it then is, or None when there is none."""
    params = {"id": delivery_id, "job": job_id, "owner": owner}
    async with db.transaction() as tx:
        found = await tx.execute(_REQUEUE, {**params, "now": now_ms()})
    return await db.fetchone(_GET, params) if found else None
