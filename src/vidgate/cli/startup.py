"""What ``serve``, ``api`` and ``worker`` check before they start, so a start that cannot work stops at
once with one line saying why, never a traceback from inside a server process.

The checks: the log format and level exist, the port is free (the HTTP servers bind with
``SO_REUSEPORT``, so a second server on a port in use would otherwise share it with the first,
answering every other request), the data dir and a local blob store are writable, the database is
reachable and at this release's schema, and a scale-out process has the link-signing secret every
process must share.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from vidgate.cli.options import configured, fail, one_line

if TYPE_CHECKING:
    from vidgate.gateway.settings import Settings

Role = Literal["serve", "api", "worker"]


def listening_socket(host: str, port: int, *, what: str = "") -> socket.socket:
    """A socket bound to ``host:port`` and listening, without ``SO_REUSEPORT``: it fails when anything
    else listens there, whoever it is. Exits with one line when it cannot be had."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        fail(f"cannot listen on {host}:{port}{what}: {exc.strerror}")
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restart within TIME_WAIT is fine
    try:
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            fail(f"port {port} on {host} is already in use{what}: is another vidgate server running there?")
        fail(f"cannot listen on {host}:{port}{what}: {exc.strerror or exc}")
    return sock


def check_port(host: str, port: int) -> None:
    """Exit with one line unless ``host:port`` is free to listen on now."""
    listening_socket(host, port).close()


def check_writable(directory: Path, what: str) -> None:
    """Create ``directory`` if needed and write (then remove) a file in it; one line when that fails."""
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, name = tempfile.mkstemp(prefix=".write-check-", dir=directory)
        try:
            os.write(fd, b"ok")
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(name)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            reason += " (read-only or not this user's)"
        fail(f"{what} {directory} is not writable: {reason}")


def check_database(settings: Settings) -> None:
    """Reach the database and compare its schema with this release's. An older SQLite schema is brought
    up to date here (the embedded database is this machine's own, as ``vidgate serve`` always did); a
    PostgreSQL one is refused, for ``vidgate migrate`` to upgrade once for every process."""
    from vidgate.gateway.storage.migrate import HEAD, known_revisions, schema_problem, schema_revision, shown_url
    from vidgate.gateway.storage.migrate import migrate as run_migrate

    url = settings.database_url
    try:
        revision = schema_revision(url)
    except Exception as exc:
        fail(f"cannot reach the database {shown_url(url)}: {type(exc).__name__}: {exc}")
    if revision != HEAD and settings.is_sqlite and (revision is None or revision in known_revisions()):
        try:
            run_migrate(url)
        except Exception as exc:
            fail(f"cannot migrate the database {shown_url(url)}: {type(exc).__name__}: {one_line(exc)[:300]}")
        return
    problem = schema_problem(revision)
    if problem is not None:
        fail(problem)


def check_signing_secret(settings: Settings, role: Role) -> None:
    """An API or worker process on PostgreSQL must be given the link-signing secret: one generated into
    its own data dir would differ from the other processes', and links signed by one (in answers, in
    events, in webhook payloads) would be refused by the others."""
    if role == "serve" or settings.is_sqlite or configured("signing_secret"):
        return
    fail(
        f"vidgate {role} on PostgreSQL needs VIDGATE_SIGNING_SECRET (or signing_secret in the config file), "
        "the same on every api and worker process: download links in answers and webhook payloads are signed with it"
    )


def check_logging(settings: Settings) -> None:
    """The log format and level name ones that exist (every server process configures them itself)."""
    if settings.log_format not in ("text", "json"):
        fail(f"bad setting VIDGATE_LOG_FORMAT: {settings.log_format!r} (text or json)")
    if not isinstance(logging.getLevelName(settings.log_level.upper()), int):
        fail(f"bad setting VIDGATE_LOG_LEVEL: {settings.log_level!r} (DEBUG, INFO, WARNING or ERROR)")


def preflight(settings: Settings, role: Role, host: str | None = None, port: int | None = None) -> None:
    """Every check ``role`` needs, cheapest first; exits with one line at the first that fails."""
    check_logging(settings)
    check_signing_secret(settings, role)
    if host is not None and port is not None:
        check_port(host, port)
    check_writable(settings.data_dir, "the data dir")
    if settings.blob_url.startswith("file://"):
        check_writable(Path(settings.blob_url.removeprefix("file://")), "the blob store")
    check_database(settings)
