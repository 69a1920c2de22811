"""A create on PostgreSQL in one statement: limits, hold, ledger entry, job row, event row and NOTIFY.

The same writes as the SQLite path (``JobService.create``), but sent as one round trip. As eight
statements in a transaction, every create held the owner's account row locked from its hold to its
``COMMIT``, several client round trips later, so one key's creates queued behind each other on that
lock (483/s at 0.6 of a core). Here the lock lives only while the server runs the statement.

Every write is conditional on the ones before it: the hold only when the limits pass, the job only
when the hold was taken (or nothing is held), the ledger entry, event and webhook delivery only when
the job row was written. A create that writes nothing is told apart afterwards from the checks the
statement returns. A key with a concurrency cap or a spend limit cannot be checked from one
statement's snapshot (two racing creates would both see room), so for such a key the statement
writes nothing and says so, and runs again in a transaction once the account row is locked. The one
case that writes a hold without a job is an idempotency key raced by
another create: keyed creates therefore run it inside a transaction that is rolled back then.
"""

from __future__ import annotations

from typing import Any, NoReturn

import msgspec

from vidgate.errors import InsufficientFundsError, RateLimitError, SpendLimitExceededError
from vidgate.gateway.billing.limits import day_start, month_start, next_day, next_month
from vidgate.gateway.billing.pricing import usd
from vidgate.gateway.events.outbox import CHANNEL, NOTIFY_ORIGIN, wanted
from vidgate.gateway.ids import new_id
from vidgate.gateway.jobs.records import JobRecord, JobView
from vidgate.gateway.jobs.spec import VideoSpec
from vidgate.gateway.jobs.views import render
from vidgate.gateway.secret import Secret
from vidgate.gateway.storage.db import Database, Q, Row
from vidgate.types import JobEvent

_LIVE = "SELECT count(*) FROM jobs WHERE owner_id = :owner AND status IN ('queued', 'processing')"
_SPENT = (
    "SELECT COALESCE(-SUM(amount), 0) FROM ledger WHERE owner_id = :owner AND kind = 'charge' AND created_at >= {since}"
)
# The checks' subqueries sit in CASE arms: PostgreSQL runs them only for accounts with that limit.
CREATE = Q(
    "-- PostgreSQL only",
    pg=f"""
WITH acct AS (
  SELECT a.owner_id IS NOT NULL AS found, a.balance, a.held,
         COALESCE(NULLIF(a.max_concurrent_jobs, 0), :default_cap::integer) AS cap,
         NULLIF(a.daily_limit, 0) AS daily_limit, NULLIF(a.monthly_limit, 0) AS monthly_limit
  FROM (SELECT 1) AS one LEFT JOIN accounts AS a ON a.owner_id = :owner::text
), chk AS (
  SELECT acct.*,
    CASE WHEN found AND cap > 0 THEN ({_LIVE}) END AS live,
    CASE WHEN found AND daily_limit IS NOT NULL THEN ({_SPENT.format(since=":day::bigint")}) END AS spent_day,
    CASE WHEN found AND monthly_limit IS NOT NULL THEN ({_SPENT.format(since=":month::bigint")}) END AS spent_month
  FROM acct
), ok AS (
  SELECT (live IS NULL OR live < cap)
     AND (spent_day IS NULL OR spent_day + held + :quote::bigint <= daily_limit)
     AND (spent_month IS NULL OR spent_month + held + :quote::bigint <= monthly_limit) AS pass,
     found AND NOT :locked::boolean
       AND (cap > 0 OR daily_limit IS NOT NULL OR monthly_limit IS NOT NULL) AS needs_lock
  FROM chk
), go AS (
  SELECT pass AND NOT needs_lock AS go FROM ok
), h AS (
  UPDATE accounts SET held = held + :quote::bigint
  WHERE owner_id = :owner::text AND :quote::bigint > 0 AND balance - held >= :quote::bigint
    AND (SELECT go FROM go)
  RETURNING 1
), j AS (
  INSERT INTO jobs (id, owner_id, model, status, provider, spec, created_at, updated_at, deadline_at,
    expected_seconds, progress, progress_source, idempotency_key, request_hash, request_id, next_run_at, quote,
    billing_state, is_byok, byok)
  SELECT :id::text, :owner::text, :model::text, 'queued', :provider::text, :spec::text, :now::bigint, :now::bigint,
    :deadline::bigint, :expected::integer, 0, 'estimate', :key::text, :hash::text, :request_id::text, :now::bigint,
    :quote::bigint, :billing_state::text, :is_byok::smallint, :byok::text
  WHERE (SELECT go FROM go) AND (:quote::bigint <= 0 OR EXISTS (SELECT 1 FROM h))
  ON CONFLICT (owner_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
  RETURNING *
), l AS (
  INSERT INTO ledger (id, owner_id, job_id, kind, amount, model, created_at, memo)
  SELECT :ledger_id::text, :owner::text, j.id, 'hold', :quote::bigint, :model::text, :now::bigint, NULL
  FROM j WHERE :quote::bigint > 0
  ON CONFLICT DO NOTHING
), e AS (
  INSERT INTO events (id, job_id, owner_id, type, created_at, data)
  SELECT :event_id::text, j.id, :owner::text, 'video.created', :now::bigint, :data::text FROM j
  RETURNING id
), w AS (
  INSERT INTO webhook_deliveries (id, event_id, job_id, owner_id, url, status, attempts, next_attempt_at, created_at)
  SELECT :delivery_id::text, e.id, :id::text, :owner::text, :url::text, 'pending', 0, :now::bigint, :now::bigint
  FROM e WHERE :url::text IS NOT NULL
  ON CONFLICT DO NOTHING
), n AS (
  SELECT pg_notify('{CHANNEL}', :payload::text) FROM e
)
SELECT j.*, chk.found AS c_found, chk.balance AS c_balance, chk.held AS c_held, chk.cap AS c_cap,
  chk.live AS c_live, chk.daily_limit AS c_daily, chk.monthly_limit AS c_monthly,
  CAST(chk.spent_day AS BIGINT) AS c_spent_day, CAST(chk.spent_month AS BIGINT) AS c_spent_month,
  (SELECT pass FROM ok) AS c_pass, (SELECT needs_lock FROM ok) AS c_needs_lock,
  EXISTS (SELECT 1 FROM h) AS c_held_ok, (SELECT count(*) FROM n) AS c_notified
FROM chk LEFT JOIN j ON true
""",
)
# A key with a concurrency cap or a spend limit: its creates run one at a time, each statement's
# snapshot taken once the one before has committed, so two racing creates cannot both see room.
LOCK = Q("-- PostgreSQL only", pg="SELECT 1 FROM accounts WHERE owner_id = :owner FOR UPDATE")
_encoder = msgspec.json.Encoder()


class Created(msgspec.Struct, frozen=True):
    """What the statement wrote: the job, or ``None`` and whether a hold was taken without it."""

    job: JobRecord | None
    event: JobEvent
    hold_taken: bool


def new_view(params: dict[str, Any], spec: VideoSpec) -> JobView:
    """The view of a job row as the insert writes it, before it exists: the ``video.created`` event's data."""
    return JobView(
        params["id"],
        params["model"],
        "queued",
        params["provider"],
        None,
        spec,
        params["now"],
        None,
        None,
        params["expected"],
        0,
        "estimate",
        None,
        None,
        (),
        params["request_id"],
        params["quote"],
        None,
        params["billing_state"],
        bool(params["is_byok"]),
        None,
    )


async def insert(
    db: Database,
    params: dict[str, Any],
    spec: VideoSpec,
    *,
    secret: Secret | str,
    default_cap: int,
) -> Created:
    """Run the create; raises the limit and balance errors the SQLite path raises, in the same order."""
    now = params["now"]
    video = render(new_view(params, spec), secret=secret, now=now)
    event = JobEvent(id=new_id("evt"), type="video.created", created_at=now // 1000, data=video)
    hook = spec.webhook
    url = hook.url if hook is not None and wanted(hook, "video.created") else None
    args = {
        **params,
        "default_cap": default_cap,
        "day": day_start(now),
        "month": month_start(now),
        "ledger_id": new_id("led") if params["quote"] > 0 else None,  # ids only for rows it may write
        "event_id": event.id,
        "data": _encoder.encode(video).decode(),
        "delivery_id": new_id("whd") if url is not None else None,
        "url": url,
        "payload": f"{event.id} video.created {NOTIFY_ORIGIN}",
    }
    limited = False
    if params["key"] is None:  # no idempotency key: the statement alone is atomic
        row = await db.fetchone(CREATE, {**args, "locked": False})
        if row is None or not row["c_needs_lock"]:
            return _result(row, event, params)
        limited = True  # it wrote nothing: run it once more, under the account row's lock
    try:
        async with db.transaction() as tx:
            row = await _run(tx, args, limited)
            result = _result(row, event, params)
            if result.job is None and result.hold_taken:
                raise _Undo
            return result
    except _Undo:  # rolled back: the key's other create won, and this one wrote nothing
        return Created(job=None, event=event, hold_taken=False)


async def _run(tx: Any, args: dict[str, Any], limited: bool) -> Row | None:
    """The statement in ``tx``; for a key known or found to have limits, once its account row is
    locked (a run without the lock then wrote nothing)."""
    if not limited:
        row = await tx.fetchone(CREATE, {**args, "locked": False})
        if row is None or not row["c_needs_lock"]:
            return row
    await tx.execute(LOCK, {"owner": args["owner"]})
    return await tx.fetchone(CREATE, {**args, "locked": True})


class _Undo(Exception):
    """Rolls the transaction back: a hold was taken for a job another create's key won."""


def _result(row: Row | None, event: JobEvent, params: dict[str, Any]) -> Created:
    if row is None:  # the statement always returns its one row of checks
        raise RuntimeError("the create statement returned no row")
    if row["id"] is not None:
        return Created(job=JobRecord.from_row(row), event=event, hold_taken=bool(row["c_held_ok"]))
    if not row["c_pass"]:
        _limit_error(row, params)
    quote = params["quote"]
    if quote > 0 and not row["c_held_ok"]:
        available = (row["c_balance"] - row["c_held"]) if row["c_found"] else 0
        raise InsufficientFundsError(
            f"this job costs ${quote / 1e6:.4f} and the available balance is ${available / 1e6:.4f}",
            details={"required": quote / 1e6, "available": available / 1e6},
        )
    return Created(job=None, event=event, hold_taken=bool(row["c_held_ok"]))


def _limit_error(row: Row, params: dict[str, Any]) -> NoReturn:
    """The first limit that failed, worded as ``billing.accounts.check_limits`` words it."""
    live, cap = row["c_live"], row["c_cap"]
    if live is not None and live >= cap:
        raise RateLimitError(
            f"this key already has {live} jobs queued or running (limit {cap}); retry when one finishes",
            headers={"Retry-After": "5"},
            details={"limit": "concurrent_jobs"},
        )
    now, quote, held = params["now"], params["quote"], row["c_held"]
    for name, limit, spent, resets in (
        ("daily", row["c_daily"], row["c_spent_day"], next_day),
        ("monthly", row["c_monthly"], row["c_spent_month"], next_month),
    ):
        if spent is None or spent + held + quote <= limit:
            continue
        at = resets(now)
        wait = max(1, int(at.timestamp() - now / 1000))
        raise SpendLimitExceededError(
            f"the {name} spend limit of ${usd(limit):.2f} would be passed (${usd(spent):.4f} spent, "
            f"${usd(held):.4f} held, this job needs ${usd(quote):.4f}); it resets at {at.isoformat()}",
            details={"limit": name, "resets_at": at.isoformat()},
            headers={"Retry-After": str(wait)},
        )
    raise RuntimeError("the create statement refused a job without a failing limit")
