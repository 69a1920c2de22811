"""``vidgate serve``, ``api``, ``worker`` and ``migrate``: the gateway's long-running processes and its
schema upgrade. Each checks what it needs before it starts (``startup``) and says in one line why it
cannot."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from vidgate.cli.options import Config, DataDir, fail, load, one_line, paragraphs
from vidgate.cli.startup import Role, listening_socket, preflight

if TYPE_CHECKING:
    from vidgate.gateway.settings import Settings

log = logging.getLogger("vidgate.worker")


class Server(StrEnum):
    granian = "granian"
    uvicorn = "uvicorn"


ServerOption = Annotated[Server, typer.Option("--server", help="The HTTP server to run the API on.")]
Host = Annotated[str | None, typer.Option(help="Address to listen on (VIDGATE_HOST; default 127.0.0.1).")]
Port = Annotated[int | None, typer.Option(help="Port to listen on (VIDGATE_PORT; default 8080).")]


def _serve(server: Server, settings: Settings, host: str, port: int, workers: int, role: Role) -> None:
    from vidgate.cli import serving

    os.environ["VIDGATE_PROCESS_ROLE"] = role
    os.environ["VIDGATE_RUN_WORKER"] = "1" if role == "serve" else "0"
    serving.serve(server.value, settings, host, port, workers)


def serve(
    host: Host = None,
    port: Port = None,
    data_dir: DataDir = None,
    config: Config = None,
    server: ServerOption = Server.granian,
) -> None:
    """Run the API and the job worker in one process (SQLite and local files by default)."""
    settings = load(data_dir, config)
    host, port = host or settings.host, settings.port if port is None else port
    preflight(settings, "serve", host, port)
    typer.echo(f"vidgate serving on http://{host}:{port} (data in {settings.data_dir}; Ctrl-C stops it)", err=True)
    _serve(server, settings, host, port, 1, "serve")


def api(
    host: Host = None,
    port: Port = None,
    workers: Annotated[int, typer.Option(help="HTTP server worker processes.")] = 2,
    data_dir: DataDir = None,
    config: Config = None,
    server: ServerOption = Server.granian,
) -> None:
    """Run only the HTTP API (no job worker), for scale-out deployments."""
    settings = load(data_dir, config)
    host, port = host or settings.host, settings.port if port is None else port
    preflight(settings, "api", host, port)
    _serve(server, settings, host, port, workers, "api")


def worker(
    data_dir: DataDir = None,
    config: Config = None,
    worker_id: Annotated[str | None, typer.Option(help="A name for this worker's leases.")] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            "--metrics-port",
            help="Serve /metrics, /healthz and /readyz on this port (VIDGATE_WORKER_METRICS_PORT; default: none).",
        ),
    ] = None,
    metrics_host: Annotated[
        str | None,
        typer.Option(
            "--metrics-host", help="Address for the metrics port (VIDGATE_WORKER_METRICS_HOST; default 127.0.0.1)."
        ),
    ] = None,
) -> None:
    """Run only the job worker, for scale-out deployments."""
    settings = load(data_dir, config)
    preflight(settings, "worker")
    port = settings.worker_metrics_port if metrics_port is None else metrics_port
    host = metrics_host or settings.worker_metrics_host
    sock = listening_socket(host, port, what=" (the worker's metrics port)") if port else None
    from vidgate.cli.serving import ProbeServer
    from vidgate.gateway.ids import token
    from vidgate.gateway.logs import configure as configure_logging
    from vidgate.gateway.services import Gateway

    configure_logging(settings.log_format, settings.log_level)  # the same format, escaping and no-locals rules
    name = worker_id or f"worker-{os.getpid()}-{token(4)}"

    async def main() -> str | None:
        try:
            gateway = await Gateway.open(settings)
        except Exception as exc:
            return f"cannot open the gateway: {type(exc).__name__}: {exc}"
        # SIGTERM and SIGINT stop it gracefully: the steps in flight finish within the grace period
        # and the leases go back at once (``close``), rather than the process dying mid-step.
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        gateway.start_worker(name)
        probes = ProbeServer(gateway, sock) if sock is not None else None
        if probes is not None:
            probes.start()
        log.info("worker %s started%s", name, f"; metrics on http://{host}:{port}/metrics" if probes else "")
        try:
            await stop.wait()
        finally:
            if probes is not None:
                await probes.stop()
            await gateway.close()
        return None

    try:
        problem = asyncio.run(main())
    except KeyboardInterrupt:
        problem = None
    if problem:
        fail(problem)


def migrate(data_dir: DataDir = None, config: Config = None) -> None:
    """Apply the database migrations (SQLite or PostgreSQL); safe to run from several places at once."""
    settings = load(data_dir, config)
    from vidgate.gateway.storage.migrate import HEAD, shown_url
    from vidgate.gateway.storage.migrate import migrate as run_migrate

    try:
        run_migrate(settings.database_url)
    except Exception as exc:
        fail(f"cannot migrate {shown_url(settings.database_url)}: {type(exc).__name__}: {one_line(exc)[:300]}")
    typer.echo(f"database is up to date (schema {HEAD})")


SERVE_HELP = paragraphs(
    "Run the API and the job worker in one process (SQLite and local files by default).",
    "It keeps the terminal until Ctrl-C (or SIGTERM) stops it: run the other commands from a second terminal, "
    "or start it in the background.",
)


def register(app: typer.Typer) -> None:
    app.command(help=SERVE_HELP)(serve)
    for command in (api, worker, migrate):
        app.command()(command)
