"""The ``vidgate`` command: run the gateway, manage keys, generate and manage videos."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import Awaitable, Callable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from vidgate.cli import storage, videos

if TYPE_CHECKING:  # the server loads only in the commands that run it
    from vidgate.gateway.auth import Keys
    from vidgate.gateway.settings import Settings
    from vidgate.types import APIKey

T = TypeVar("T")

app = typer.Typer(
    help="vidgate: a self-hostable gateway for AI video generation.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
keys_app = typer.Typer(help="Manage API keys (works on the database directly).", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
videos.register(app)
storage.register(app)

DataDir = Annotated[Path | None, typer.Option("--data-dir", help="Where the embedded database and files live.")]
Config = Annotated[Path | None, typer.Option("--config", help="A TOML settings file (VIDGATE_CONFIG).")]


class Server(StrEnum):
    granian = "granian"
    uvicorn = "uvicorn"


ServerOption = Annotated[Server, typer.Option("--server", help="The HTTP server to run the API on.")]


def _env(data_dir: Path | None, config: Path | None) -> None:
    if data_dir is not None:
        os.environ["VIDGATE_DATA_DIR"] = str(data_dir)
    if config is not None:
        os.environ["VIDGATE_CONFIG"] = str(config)


def _settings(data_dir: Path | None, config: Path | None) -> Settings:
    from vidgate.gateway.settings import load_settings

    _env(data_dir, config)
    return load_settings()


def _serve(server: Server, settings: Settings, host: str, port: int, workers: int, role: str) -> None:
    from vidgate.cli import serving

    os.environ["VIDGATE_PROCESS_ROLE"] = role
    os.environ["VIDGATE_RUN_WORKER"] = "1" if role == "serve" else "0"
    serving.serve(server.value, settings, host, port, workers)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    data_dir: DataDir = None,
    config: Config = None,
    server: ServerOption = Server.granian,
) -> None:
    """Run the API and the job worker in one process (SQLite and local files by default)."""
    settings = _settings(data_dir, config)
    from vidgate.gateway.storage.migrate import migrate as run_migrate

    if settings.is_sqlite:
        run_migrate(settings.database_url)
    typer.echo(f"vidgate serving on http://{host}:{port} (data in {settings.data_dir})", err=True)
    _serve(server, settings, host, port, 1, "serve")


@app.command()
def api(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8080,
    workers: Annotated[int, typer.Option(help="HTTP server worker processes.")] = 2,
    data_dir: DataDir = None,
    config: Config = None,
    server: ServerOption = Server.granian,
) -> None:
    """Run only the HTTP API (no job worker), for scale-out deployments."""
    _serve(server, _settings(data_dir, config), host, port, workers, "api")


@app.command()
def worker(
    data_dir: DataDir = None,
    config: Config = None,
    worker_id: Annotated[str | None, typer.Option(help="A name for this worker's leases.")] = None,
) -> None:
    """Run only the job worker, for scale-out deployments."""
    settings = _settings(data_dir, config)
    from vidgate.gateway.ids import token
    from vidgate.gateway.logs import configure as configure_logging
    from vidgate.gateway.services import Gateway

    configure_logging(settings.log_format, settings.log_level)  # the same escaping and no-locals rules

    async def main() -> None:
        gateway = await Gateway.open(settings)
        # SIGTERM and SIGINT stop it gracefully: the steps in flight finish within the grace period
        # and the leases go back at once (``close``), rather than the process dying mid-step.
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        gateway.start_worker(worker_id or f"worker-{os.getpid()}-{token(4)}")
        try:
            await stop.wait()
        finally:
            await gateway.close()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass


@app.command()
def migrate(data_dir: DataDir = None, config: Config = None) -> None:
    """Apply the database migrations (SQLite or PostgreSQL)."""
    settings = _settings(data_dir, config)
    from vidgate.gateway.storage.migrate import migrate as run_migrate

    run_migrate(settings.database_url)
    typer.echo("database is up to date")


def _with_gateway(data_dir: Path | None, config: Path | None, fn: Callable[[Keys, Settings], Awaitable[T]]) -> T:
    settings = _settings(data_dir, config)
    from vidgate.gateway.auth import Keys
    from vidgate.gateway.storage.db import open_database
    from vidgate.gateway.storage.migrate import migrate as run_migrate

    run_migrate(settings.database_url)

    async def main() -> T:
        db = await open_database(settings.database_url)
        try:
            return await fn(Keys(db, settings.admin_key), settings)
        finally:
            await db.close()

    return asyncio.run(main())


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="A name to recognise the key by.")] = "default",
    balance: Annotated[float | None, typer.Option(help="Starting balance in USD.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print {id, key} as JSON.")] = False,
    data_dir: DataDir = None,
    config: Config = None,
) -> None:
    """Create an API key; its secret is printed once, as the last line."""

    async def go(keys: Keys, settings: Settings) -> APIKey:
        amount = settings.default_balance_micros if balance is None else round(balance * 1_000_000)
        return await keys.create(name, amount)

    key = _with_gateway(data_dir, config, go)
    if as_json:
        typer.echo(json.dumps({"id": key.id, "key": key.key, "name": key.name}))
    else:
        typer.echo(f"created key {key.id} ({key.name}); keep the secret below, it is not shown again:", err=True)
        typer.echo(key.key)


@keys_app.command("list")
def keys_list(
    as_json: Annotated[bool, typer.Option("--json")] = False, data_dir: DataDir = None, config: Config = None
) -> None:
    """List API keys (never their secrets)."""
    rows = _with_gateway(data_dir, config, lambda keys, s: keys.list())
    if as_json:
        typer.echo(
            json.dumps(
                [
                    {
                        "id": k.id,
                        "name": k.name,
                        "prefix": k.prefix,
                        "created_at": k.created_at,
                        "revoked_at": k.revoked_at,
                    }
                    for k in rows
                ]
            )
        )
        return
    for k in rows:
        typer.echo(f"{k.id}  {k.prefix}…  {k.name}{'  (revoked)' if k.revoked_at else ''}")


@keys_app.command("revoke")
def keys_revoke(
    key_id: str,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    data_dir: DataDir = None,
    config: Config = None,
) -> None:
    """Revoke an API key. Running servers refuse it within 2 s and close its open websockets and
    event streams, its stream tokens included, within about a second (at once when revoked through
    a server's admin route, in that server)."""
    from vidgate.errors import VidgateError

    try:
        key = _with_gateway(data_dir, config, lambda keys, s: keys.revoke(key_id))
    except VidgateError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from None
    typer.echo(json.dumps({"id": key.id, "revoked_at": key.revoked_at}) if as_json else f"revoked {key.id}")


def _dollars(value: float | None) -> str:
    return "-" if value is None else f"${value:,.4f}"


@keys_app.command("topup")
def keys_topup(
    key_id: str,
    amount: Annotated[float, typer.Argument(help="USD to add (negative to correct a balance).")],
    memo: Annotated[str | None, typer.Option(help="A note kept on the ledger entry.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    data_dir: DataDir = None,
    config: Config = None,
) -> None:
    """Add funds to a key's balance (a ledger entry)."""
    from vidgate.errors import VidgateError
    from vidgate.gateway.billing import accounts

    try:
        view = _with_gateway(
            data_dir, config, lambda keys, s: accounts.topup(keys.db, key_id, round(amount * 1e6), memo)
        )
    except VidgateError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from None
    typer.echo(
        json.dumps(view)
        if as_json
        else f"{key_id}: balance {_dollars(view['balance'])}, available {_dollars(view['available'])}"
    )


@keys_app.command("limits")
def keys_limits(
    key_id: str,
    daily: Annotated[float | None, typer.Option(help="Daily spend limit in USD (0 removes it).")] = None,
    monthly: Annotated[float | None, typer.Option(help="Monthly spend limit in USD (0 removes it).")] = None,
    rate: Annotated[int | None, typer.Option(help="Requests a second (0 removes it).")] = None,
    burst: Annotated[int | None, typer.Option(help="Token bucket size.")] = None,
    concurrency: Annotated[int | None, typer.Option(help="Jobs queued or running at once (0 removes it).")] = None,
    data_dir: DataDir = None,
    config: Config = None,
) -> None:
    """Set a key's limits; prints them all."""
    from vidgate.gateway.billing import accounts

    values: dict[str, int | None] = {}
    for name, value, money in (
        ("daily_limit", daily, True),
        ("monthly_limit", monthly, True),
        ("rate_per_second", rate, False),
        ("rate_burst", burst, False),
        ("max_concurrent_jobs", concurrency, False),
    ):
        if value is not None:
            values[name] = (round(value * 1e6) if money else int(value)) or None
    view = _with_gateway(data_dir, config, lambda keys, s: accounts.set_limits(keys.db, key_id, values))
    typer.echo(json.dumps(view["limits"]))


@app.command()
def ledger(
    key_id: str,
    limit: Annotated[int, typer.Option(help="How many entries, newest first.")] = 50,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    data_dir: DataDir = None,
    config: Config = None,
) -> None:
    """Show a key's balance and its newest ledger entries."""
    from vidgate.gateway.billing import accounts

    async def go(keys: Keys, s: Settings) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        return accounts.balance_view(await accounts.account(keys.db, key_id)), await accounts.entries(
            keys.db, key_id, limit
        )

    view, entries = _with_gateway(data_dir, config, go)
    if as_json:
        typer.echo(json.dumps({**view, "entries": entries}))
        return
    typer.echo(
        f"balance {_dollars(view['balance'])}  held {_dollars(view['held'])}  available {_dollars(view['available'])}"
    )
    for e in entries:
        typer.echo(f"{e['created_at']}  {e['kind']:<8} {e['amount']:>12.6f}  {e['job_id'] or ''}  {e['memo'] or ''}")


if __name__ == "__main__":
    app()
