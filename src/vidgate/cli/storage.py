"""``vidgate storage``: check the object store against the database, and repair what is safe to repair."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from vidgate.cli.options import Config, DataDir, load, paragraphs

if TYPE_CHECKING:
    from vidgate.gateway.worker.reconcile import Report

storage_app = typer.Typer(
    help="Inspect and repair the object store (works on the database and the store directly).",
    no_args_is_help=True,
)
SHOWN = 50  # rows per table; --json has them all
RECONCILE_HELP = paragraphs(
    "Compare the object store with the database: objects no job or upload owns (orphans, among them the "
    "objects of uploads with no row), completed jobs whose output object is missing, uploads whose object is "
    "missing, and uploads past their expiry whose row is still kept. Without --repair nothing is changed.",
    "With --repair, orphans older than the grace period are removed (the rule the worker's orphan sweep "
    "applies, run now), as are objects a delete or retention already asked to remove (their retries are not "
    "waited for), and removal records whose object is already gone are forgotten. Younger orphans are kept, "
    "as the sweep keeps them, so a write racing its job's last step or its upload's row is never removed "
    "under it. Expired uploads lose their row and their object, as the retention sweep would take them.",
    "Missing outputs and uploads are reported, never changed, with or without --repair: the gateway cannot "
    "recreate the bytes, and a missing object is as often a store configured or mounted wrong (another "
    "bucket, prefix or disk) as a real loss, which marking the rows would make permanent. Restore the "
    "objects, or delete those jobs and files.",
    "Exits 1 when the store or the database cannot be read, or a repair stopped or was refused.",
)


@storage_app.command("reconcile", help=RECONCILE_HELP)
def reconcile(
    repair: Annotated[
        bool,
        typer.Option(
            "--repair", help="Remove orphans past the grace period and expired uploads; forget finished removals."
        ),
    ] = False,
    grace_seconds: Annotated[
        float | None,
        typer.Option(
            "--grace-seconds", help="Orphans younger than this are kept (default: the orphan_grace_seconds setting)."
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Repair even when the database holds no job at all.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the full report as JSON.")] = False,
    data_dir: DataDir = None,
    config: Config = None,
) -> None:
    """Report orphans, missing outputs and uploads, expired uploads; with --repair, remove what the sweeps would."""
    from vidgate.gateway.storage.blobs import BlobStore
    from vidgate.gateway.storage.db import open_database
    from vidgate.gateway.storage.migrate import migrate
    from vidgate.gateway.worker.reconcile import reconcile as run

    settings = load(data_dir, config)
    grace = settings.orphan_grace_seconds if grace_seconds is None else grace_seconds

    async def main() -> Report:
        if settings.is_sqlite:
            await asyncio.to_thread(migrate, settings.database_url)
        db = await open_database(settings.database_url)
        try:
            blobs = BlobStore(settings.blob_url, db, create=False)
            return await run(db, blobs, grace_ms=int(grace * 1000), repair=repair, force=force)
        finally:
            await db.close()

    try:
        report = asyncio.run(main())
    except Exception as exc:
        typer.echo(f"error: cannot reconcile ({type(exc).__name__}: {exc})", err=True)
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps(report.as_dict()))
    else:
        _show(report)
    if report.error:
        if not as_json:
            typer.echo(f"error: {report.error}", err=True)
        raise typer.Exit(1)


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


def _show(report: Report) -> None:
    out = Console()
    out.print(f"{report.store}: {report.objects} objects, {_size(report.bytes)}")
    if report.orphans:
        table = Table("key", "job or upload", "age", "size", "state", title=f"orphans ({len(report.orphans)})")
        for o in report.orphans[:SHOWN]:
            if o.key in report.removed:
                what = "removed"
            elif o.removal_recorded:
                what = "removal pending"
            else:
                what = "removable" if o.removable else "within grace"
            job = f"{o.job_id} ({o.job_status or 'no row'})" if o.job_id else "-"
            if o.upload_id:
                job = f"{o.upload_id} (no row)"
            table.add_row(o.key, job, f"{o.age_seconds:.0f} s", _size(o.bytes), what)
        out.print(table)
    if report.missing:
        table = Table(
            "job", "owner", "output", "key", title=f"completed jobs with a missing output ({len(report.missing)})"
        )
        for m in report.missing[:SHOWN]:
            table.add_row(m.job_id, m.owner_id, str(m.index), m.key)
        out.print(table)
    if report.missing_uploads:
        table = Table("file", "owner", "key", title=f"uploads with a missing object ({len(report.missing_uploads)})")
        for u in report.missing_uploads[:SHOWN]:
            table.add_row(u.file_id, u.owner_id, u.key)
        out.print(table)
    if report.expired_uploads:
        table = Table(
            "file", "owner", "expired", "object", title=f"expired uploads still kept ({len(report.expired_uploads)})"
        )
        for e in report.expired_uploads[:SHOWN]:
            table.add_row(
                e.file_id, e.owner_id, f"{e.expired_seconds:.0f} s ago", "present" if e.object_present else "gone"
            )
        out.print(table)
    lists = (report.orphans, report.missing, report.missing_uploads, report.expired_uploads)
    hidden = sum(max(0, len(rows) - SHOWN) for rows in lists)
    if hidden:
        out.print(f"… and {hidden} more rows (--json shows them all)")
    removable = sum(o.removable for o in report.orphans)
    line = f"{len(report.orphans)} orphans ({removable} removable), {len(report.missing)} missing outputs, "
    line += f"{len(report.missing_uploads)} missing uploads, {len(report.expired_uploads)} expired uploads, "
    line += f"{report.pending_removals} removals pending ({report.stale_records} already done)"
    if report.repair:
        line += f"; removed {len(report.removed)}, forgot {report.forgotten_records} records"
        line += f", expired {report.expired_removed} uploads"
    elif removable or report.stale_records or report.expired_uploads:
        line += "; run with --repair to clean up"
    out.print(line, soft_wrap=True)  # one line whatever the width, for scripts that look for it


def register(app: typer.Typer) -> None:
    app.add_typer(storage_app, name="storage")
