"""``vidgate jobs`` and ``vidgate leases``: look into jobs and unstick them, on the database directly.

``requeue`` only ever changes when a job runs next: a live job (queued or processing) whose lease is
free or has lapsed becomes due now, with its count of failed steps in a row reset. Its attempts and
upstream id stay, so the worker's own rules decide what happens: a job a provider accepted is only
polled again, never sent anywhere; a create whose answer was lost is looked up at that provider
before anything is sent again. A job a live worker holds is refused (it is being worked), as is an
ended job: statuses only move forward, and a failed job's hold was voided and its failure told.

``fail`` ends a live job through the same lifecycle step a worker uses: status, the hold's void and
the ``video.failed`` event (webhooks included) in one transaction. It does not ask an upstream to
stop a job it runs; cancelling through the API does.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import msgspec
import typer
from rich.console import Console
from rich.table import Column, Table
from rich.text import Text

from vidgate.cli import database
from vidgate.cli.options import AsJSON, Config, DataDir, fail, paragraphs

if TYPE_CHECKING:
    from vidgate.gateway.jobs.records import Attempt, JobRecord, StoredError, StoredOutput
    from vidgate.gateway.settings import Settings
    from vidgate.gateway.storage.db import Database

jobs_app = typer.Typer(help="Inspect, requeue and fail jobs (works on the database directly).", no_args_is_help=True)
STATUSES = ("queued", "processing", "completed", "failed", "cancelled", "expired")
LIVE = ("queued", "processing")
FAILED_BY_ADMIN = "failed_by_admin"


class JobLine(msgspec.Struct):
    """A job as ``jobs list`` and ``leases`` show it; times are epoch milliseconds."""

    id: str
    status: str
    model: str
    provider: str | None
    owner_id: str
    created_at: int
    progress: int | None
    failures: int
    lease_owner: str | None
    lease_until: int | None
    next_run_at: int | None

    @classmethod
    def of(cls, job: JobRecord) -> JobLine:
        return cls(
            job.id,
            job.status,
            job.model,
            job.provider,
            job.owner_id,
            job.created_at,
            job.progress,
            job.poll_failures,
            job.lease_owner,
            job.lease_until,
            job.next_run_at,
        )


class LedgerLine(msgspec.Struct):
    kind: str
    amount: int  # micro-dollars
    created_at: int
    memo: str | None


class JobDetail(JobLine):
    """Everything ``jobs show`` tells of a job (never its sealed provider keys or webhook secret)."""

    native_id: str | None
    prompt: str
    started_at: int | None
    completed_at: int | None
    updated_at: int
    deadline_at: int
    quote: int
    cost: int | None
    billing_state: str
    cancel_requested: bool
    webhook_url: str | None
    error: StoredError | None
    attempts: list[Attempt]
    outputs: list[StoredOutput]
    ledger: list[LedgerLine]


def _when(ms: int | None) -> str:
    return "-" if ms is None else datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _relative(ms: int | None) -> str:
    if ms is None:
        return "-"
    seconds = (ms - time.time() * 1000) / 1000
    return f"in {seconds:.0f} s" if seconds >= 0 else f"{-seconds:.0f} s ago"


def _job_column() -> Column:
    """The job id: never wrapped or cut short, so it can be copied from a narrow terminal."""
    return Column("job", no_wrap=True, min_width=30)


def _row(table: Table, *cells: str) -> None:
    """A table row shown as written: a prompt or an upstream's message is text, never Rich markup."""
    table.add_row(*(Text(cell) for cell in cells))


def _print_json(value: Any) -> None:
    typer.echo(msgspec.json.encode(value).decode())


async def _load(db: Database, job_id: str) -> JobRecord:
    from vidgate.errors import NotFoundError
    from vidgate.gateway.jobs.records import JobRecord
    from vidgate.gateway.storage.db import Q

    row = await db.fetchone(Q("SELECT * FROM jobs WHERE id = :id"), {"id": job_id})
    if row is None:
        raise NotFoundError(f"no job {job_id}")
    return JobRecord.from_row(row)


def _table(lines: list[JobLine], title: str) -> Table:
    table = Table(
        _job_column(), "status", "model", "provider", "owner", "created (UTC)", "%", "fails", "lease", "next run"
    )
    table.title = title
    for j in lines:
        lease = f"{j.lease_owner} ({_relative(j.lease_until)})" if j.lease_owner else "-"
        _row(
            table,
            j.id,
            j.status,
            j.model,
            j.provider or "-",
            j.owner_id,
            _when(j.created_at),
            "-" if j.progress is None else str(j.progress),
            str(j.failures),
            lease,
            _relative(j.next_run_at),
        )
    return table


@jobs_app.command("list")
def list_jobs(
    status: Annotated[str | None, typer.Option(help=f"Comma-separated statuses ({', '.join(STATUSES)}).")] = None,
    owner: Annotated[str | None, typer.Option(help="Only this owner's jobs (its key id).")] = None,
    limit: Annotated[int, typer.Option(help="How many, newest first.", min=1, max=10_000)] = 50,
    as_json: AsJSON = False,
    data_dir: DataDir = None,
    config: Config = None,
) -> None:
    """List jobs, newest first, whoever owns them."""
    wanted = tuple(s.strip() for s in status.split(",") if s.strip()) if status else ()
    unknown = [s for s in wanted if s not in STATUSES]
    if unknown:
        fail(f"unknown status {', '.join(unknown)}: use {', '.join(STATUSES)}", 2)
    from vidgate.gateway.jobs.records import JobRecord
    from vidgate.gateway.storage.db import Q

    where = ["1 = 1"]
    if wanted:  # from the closed set above, so written into the query as they are
        where.append("status IN (" + ", ".join(f"'{s}'" for s in wanted) + ")")
    if owner:
        where.append("owner_id = :owner")
    query = Q(f"SELECT * FROM jobs WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT :limit")
    params: dict[str, Any] = {"limit": limit, **({"owner": owner} if owner else {})}

    async def go(db: Database, s: Settings) -> list[JobLine]:
        return [JobLine.of(JobRecord.from_row(r)) for r in await db.fetchall(query, params)]

    lines = database.run(data_dir, config, go)
    if as_json:
        _print_json(lines)
    else:
        Console().print(_table(lines, f"{len(lines)} jobs"))


@jobs_app.command("show")
def show(job_id: str, as_json: AsJSON = False, data_dir: DataDir = None, config: Config = None) -> None:
    """Show one job: its state, schedule, lease, attempts, error, outputs and ledger entries."""
    from vidgate.gateway.storage.db import Q

    entries = Q("SELECT kind, amount, created_at, memo FROM ledger WHERE job_id = :id ORDER BY created_at, kind")

    async def go(db: Database, s: Settings) -> JobDetail:
        job = await _load(db, job_id)
        ledger = [
            LedgerLine(r["kind"], r["amount"], r["created_at"], r["memo"])
            for r in await db.fetchall(entries, {"id": job_id})
        ]
        line = JobLine.of(job)
        return JobDetail(
            **msgspec.structs.asdict(line),
            native_id=job.native_id,
            prompt=job.spec.prompt,
            started_at=job.started_at,
            completed_at=job.completed_at,
            updated_at=job.updated_at,
            deadline_at=job.deadline_at,
            quote=job.quote,
            cost=job.cost,
            billing_state=job.billing_state,
            cancel_requested=job.cancel_requested,
            webhook_url=job.spec.webhook.url if job.spec.webhook else None,
            error=job.error,
            attempts=list(job.attempts or ()),
            outputs=list(job.outputs),
            ledger=ledger,
        )

    detail = database.run(data_dir, config, go)
    if as_json:
        _print_json(detail)
        return
    _show(detail)


def _show(d: JobDetail) -> None:
    out = Console()
    facts = Table(show_header=False, box=None)
    for name, value in (
        ("job", d.id),
        ("status", d.status),
        ("model", d.model),
        ("provider", f"{d.provider or '-'}" + (f" (upstream id {d.native_id})" if d.native_id else "")),
        ("owner", d.owner_id),
        ("prompt", d.prompt),
        ("created", _when(d.created_at)),
        ("started", _when(d.started_at)),
        ("ended", _when(d.completed_at)),
        ("deadline", f"{_when(d.deadline_at)} ({_relative(d.deadline_at)})"),
        ("progress", "-" if d.progress is None else f"{d.progress}%"),
        (
            "billing",
            f"{d.billing_state}: quoted ${d.quote / 1e6:.4f}, cost "
            + ("-" if d.cost is None else f"${d.cost / 1e6:.4f}"),
        ),
        (
            "lease",
            f"{d.lease_owner} until {_when(d.lease_until)} ({_relative(d.lease_until)})" if d.lease_owner else "-",
        ),
        ("next run", f"{_when(d.next_run_at)} ({_relative(d.next_run_at)})" if d.next_run_at else "-"),
        ("failed steps in a row", str(d.failures)),
        ("cancel requested", "yes" if d.cancel_requested else "no"),
        ("webhook", d.webhook_url or "-"),
        ("error", f"{d.error.code}: {d.error.message}" if d.error else "-"),
    ):
        _row(facts, name, value)
    out.print(facts)
    if d.attempts:
        table = Table("provider", "outcome", "at (UTC)", "status", "message", title="attempts")
        for a in d.attempts:
            status = "" if a.status_code is msgspec.UNSET else str(a.status_code)
            message = "" if a.message is msgspec.UNSET else a.message
            _row(table, a.provider, a.outcome, _when(a.at * 1000), status, message)
        out.print(table)
    if d.outputs:
        table = Table("index", "size", "duration", "bytes", "sha256", "key", title="outputs")
        for o in d.outputs:
            _row(
                table,
                str(o.index),
                f"{o.width}x{o.height}",
                f"{o.duration_seconds:.2f} s",
                str(o.bytes),
                o.sha256[:16],
                o.key,
            )
        out.print(table)
    if d.ledger:
        table = Table("kind", "USD", "at (UTC)", "memo", title="ledger")
        for e in d.ledger:
            _row(table, e.kind, f"{e.amount / 1e6:.6f}", _when(e.created_at), e.memo or "")
        out.print(table)


REQUEUE_HELP = paragraphs(
    "Make a stuck live job due now, its count of failed steps in a row reset.",
    "Only a queued or processing job whose lease is free or lapsed. Nothing is sent anywhere by this: the job "
    "keeps its attempts and upstream id, and the worker's own rules decide its next step (a job a provider "
    "accepted is only polled again). An ended job is final and refused.",
)


@jobs_app.command("requeue", help=REQUEUE_HELP)
def requeue(job_id: str, as_json: AsJSON = False, data_dir: DataDir = None, config: Config = None) -> None:
    """Make a stuck live job due now, its count of failed steps in a row reset."""
    from vidgate.gateway.ids import now_ms
    from vidgate.gateway.jobs.records import JobRecord
    from vidgate.gateway.storage.db import Q

    due = Q(
        "UPDATE jobs SET next_run_at = :now, poll_failures = 0, lease_owner = NULL, lease_until = NULL "
        "WHERE id = :id AND status IN ('queued', 'processing') AND (lease_until IS NULL OR lease_until < :now) "
        "RETURNING *"
    )

    async def go(db: Database, s: Settings) -> JobRecord | str:
        now = now_ms()
        async with db.transaction() as tx:
            row = await tx.fetchone(due, {"id": job_id, "now": now})
        if row is not None:
            return JobRecord.from_row(row)
        job = await _load(db, job_id)
        if job.status not in LIVE:
            return f"job {job_id} is {job.status}: an ended job is final (create it again instead)"
        return (
            f"job {job_id} is being worked: {job.lease_owner} holds its lease until {_when(job.lease_until)} UTC "
            f"({_relative(job.lease_until)}); requeue it once the lease is free"
        )

    result = database.run(data_dir, config, go)
    if isinstance(result, str):
        fail(result)
    line = JobLine.of(result)
    if as_json:
        _print_json(line)
    else:
        typer.echo(f"requeued {line.id} ({line.status}): due now")


FAIL_HELP = paragraphs(
    "Fail a queued or processing job: its hold is voided and its owner told (event, webhook), as a worker would.",
    "An upstream job it runs is not asked to stop; cancelling through the API does that.",
)


@jobs_app.command("fail", help=FAIL_HELP)
def fail_job(
    job_id: str,
    reason: Annotated[str, typer.Option("--reason", help="Why: the job's error message, as its owner sees it.")],
    as_json: AsJSON = False,
    data_dir: DataDir = None,
    config: Config = None,
) -> None:
    """Fail a queued or processing job, its hold voided, as a worker would."""
    from vidgate.gateway.catalog.catalog import load_catalog
    from vidgate.gateway.events.bus import EventBus
    from vidgate.gateway.jobs.lifecycle import Lifecycle
    from vidgate.gateway.jobs.records import job_error

    async def go(db: Database, s: Settings) -> JobRecord | str:
        job = await _load(db, job_id)
        lifecycle = Lifecycle(db, load_catalog(), EventBus(), s.signing_secret)
        error = job_error(FAILED_BY_ADMIN, reason, provider=job.provider)
        done = await lifecycle.transition(job_id, "failed", fields={"error": error})
        if done is None:
            return f"job {job_id} is {(await _load(db, job_id)).status}: only a queued or processing job can be failed"
        return done

    result = database.run(data_dir, config, go)
    if isinstance(result, str):
        fail(result)
    line = JobLine.of(result)
    if as_json:
        _print_json(line)
    else:
        upstream = (
            f"; the upstream job at {result.provider} ({result.native_id}) was not stopped" if result.native_id else ""
        )
        typer.echo(f"failed {line.id}: hold voided ({result.billing_state}){upstream}")


def leases(as_json: AsJSON = False, data_dir: DataDir = None, config: Config = None) -> None:
    """Which worker holds which job, until when (a lapsed lease is free for any worker to claim)."""
    from vidgate.gateway.jobs.records import JobRecord
    from vidgate.gateway.storage.db import Q

    held = Q("SELECT * FROM jobs WHERE lease_owner IS NOT NULL ORDER BY lease_owner, lease_until")

    async def go(db: Database, s: Settings) -> list[JobLine]:
        return [JobLine.of(JobRecord.from_row(r)) for r in await db.fetchall(held)]

    lines = database.run(data_dir, config, go)
    if as_json:
        _print_json(lines)
        return
    table = Table("worker", _job_column(), "status", "provider", "until (UTC)", "", title=f"{len(lines)} leases")
    for j in lines:
        _row(
            table,
            j.lease_owner or "",
            j.id,
            j.status,
            j.provider or "-",
            _when(j.lease_until),
            _relative(j.lease_until),
        )
    Console().print(table)


def register(app: typer.Typer) -> None:
    app.command()(leases)
    app.add_typer(jobs_app, name="jobs")
