"""A throwaway PostgreSQL server for tests, on 127.0.0.1 only.

    server = PostgresServer().start()       # or: with PostgresServer() as server: ...
    server.dsn                              # postgresql://postgres@127.0.0.1:PORT/vidgate
    dsn = server.create_database("t_1")     # fresh database (optionally from a template)
    server.stop()                           # fast shutdown, data dir removed

How it runs:
- Binaries: ``$VIDGATE_PG_BINDIR``, else ``/usr/lib/postgresql/<highest>/bin`` (Debian's
  ``postgresql`` package, installed by ``scripts/setup-test-env``), else ``pg_config --bindir``.
- PostgreSQL refuses to run as root. As root, initdb and the server run as the unprivileged OS user
  ``$VIDGATE_PG_OS_USER`` (default ``postgres``, created by the Debian package; ``vidgate-test`` is
  created with ``useradd`` if neither exists). As a normal user they run as that user.
- The data dir is a fresh dir ``<base>/vidgate-pg-<ownerpid>-*`` owned by that user, where <base>
  is ``default_base_dir()`` (/dev/shm when usable, else $TMPDIR; ``$VIDGATE_TEST_TMPDIR`` wins). It
  is filled by copying a cached initdb result (``<base>/vidgate-pg-initdb-<key>``, made by the first
  run on the machine; ``VIDGATE_PG_NO_INITDB_CACHE=1`` runs initdb every time). The
  server listens on 127.0.0.1:<free port> only; its Unix socket lives inside the data dir. Auth is
  ``trust`` for the socket and 127.0.0.1/32 only (no other host line). Durability is switched off
  (fsync, synchronous_commit, full_page_writes) for speed; ``max_connections=200``.
- The postmaster is started directly (not via ``pg_ctl start``, which daemonizes it) as a child of
  the test process, in its own session (Ctrl-C in the terminal does not reach it), through
  ``setpriv --pdeathsig INT``: if the test process dies in any way, even SIGKILL, the kernel sends
  the postmaster SIGINT (= fast shutdown), and its backends exit with it. ``stop()`` sends SIGINT,
  waits, escalates to SIGQUIT/SIGKILL, then removes the data dir.

Limits:
- The death signal fires when the *thread* that forked the server exits. ``spawn()`` forks from the
  main thread or from one never-ending daemon thread, so ``start()`` may be called from any thread.
- After a SIGKILL of the test process the server shuts itself down, but nobody removes its data
  dir; the next ``start()`` removes ``vidgate-pg-<pid>-*`` dirs whose owner pid is gone.
- Free ports are found by binding port 0 and closing; if another process grabs the port first the
  start is retried on a new port (up to 3 times).
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import hashlib
import os
import pwd
import queue
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

__all__ = ["PostgresServer", "PostgresUnavailable", "default_base_dir", "find_pg_bindir"]

_DIR_PREFIX = "vidgate-pg-"
_NAME_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class PostgresUnavailable(RuntimeError):
    """PostgreSQL server binaries are not installed (run scripts/setup-test-env)."""


def find_pg_bindir() -> Path:
    """Directory holding initdb/postgres/psql; raises PostgresUnavailable if there is none."""
    env = os.environ.get("VIDGATE_PG_BINDIR")
    candidates: list[Path] = [Path(env)] if env else []
    versioned = []
    for d in glob.glob("/usr/lib/postgresql/*/bin"):
        with contextlib.suppress(ValueError):
            versioned.append((int(Path(d).parent.name), Path(d)))
    candidates += [d for _, d in sorted(versioned, reverse=True)]
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=10)
            if out.returncode == 0 and out.stdout.strip():
                candidates.append(Path(out.stdout.strip()))
    for d in candidates:
        if all(os.access(d / exe, os.X_OK) for exe in ("initdb", "postgres", "psql")):
            return d
    raise PostgresUnavailable(
        "PostgreSQL server binaries (initdb, postgres) not found in /usr/lib/postgresql/*/bin or "
        "pg_config --bindir; run scripts/setup-test-env (installs Debian's postgresql package)"
    )


def default_base_dir() -> str:
    """Where test servers keep their files: ``$VIDGATE_TEST_TMPDIR``, else /dev/shm when it is a
    tmpfs with >= 1 GiB free (disk writes on these VMs are slow: initdb's 40 MB copy takes ~1 s on
    ext4 and ~0.1 s on tmpfs), else the temp dir."""
    env = os.environ.get("VIDGATE_TEST_TMPDIR")
    if env:
        return env
    with contextlib.suppress(OSError):
        st = os.statvfs("/dev/shm")
        if st.f_bavail * st.f_frsize >= 1 << 30 and os.access("/dev/shm", os.W_OK | os.X_OK):
            return "/dev/shm"
    return tempfile.gettempdir()


# ---------------------------------------------------------------------------- shared process helpers
# (seaweed.py imports these too)
_spawn_requests: queue.SimpleQueue = queue.SimpleQueue()
_spawn_thread: threading.Thread | None = None
_spawn_lock = threading.Lock()


def _spawn_loop() -> None:
    while True:
        argv, kwargs, reply = _spawn_requests.get()
        try:
            reply.put((subprocess.Popen(argv, **kwargs), None))
        except BaseException as exc:
            reply.put((None, exc))


def spawn(argv: list[str], **kwargs) -> subprocess.Popen:
    """``subprocess.Popen`` from a thread that lives as long as the process.

    A child started with ``setpriv --pdeathsig`` gets its signal when the *thread* that forked it
    ends. From the main thread that is process exit; from any other thread (``asyncio.to_thread``,
    a pytest-timeout thread) the fork is handed to one daemon thread that never returns, so the
    signal still means "the test process is gone" whoever calls ``start()``.
    """
    global _spawn_thread
    if threading.current_thread() is threading.main_thread():
        return subprocess.Popen(argv, **kwargs)
    with _spawn_lock:
        if _spawn_thread is None:
            _spawn_thread = threading.Thread(target=_spawn_loop, name="vidgate-test-spawner", daemon=True)
            _spawn_thread.start()
    reply: queue.SimpleQueue = queue.SimpleQueue()
    _spawn_requests.put((argv, kwargs, reply))
    proc, exc = reply.get()
    if exc is not None:
        raise exc
    return proc


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale_dirs(base: str, prefix: str) -> None:
    """Remove ``<prefix><pid>-*`` dirs left behind by test processes that no longer exist."""
    for path in glob.glob(os.path.join(base, prefix + "*")):
        m = re.match(re.escape(prefix) + r"(\d+)-", os.path.basename(path))
        if m and int(m.group(1)) != os.getpid() and not _pid_alive(int(m.group(1))):
            shutil.rmtree(path, ignore_errors=True)


def _ensure_os_user() -> pwd.struct_passwd:
    """The unprivileged OS user that runs PostgreSQL when we are root."""
    wanted = os.environ.get("VIDGATE_PG_OS_USER")
    for name in [wanted] if wanted else ["postgres", "vidgate-test"]:
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    name = wanted or "vidgate-test"
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "--user-group", name],
        check=True,
        capture_output=True,
    )
    return pwd.getpwnam(name)


class PostgresServer:
    """A private PostgreSQL cluster on 127.0.0.1:<free port>; see the module docstring."""

    def __init__(
        self,
        dbname: str = "vidgate",
        *,
        user: str = "postgres",
        base_dir: str | None = None,
        settings: dict[str, str] | None = None,
        start_timeout: float = 30.0,
    ) -> None:
        if not _NAME_RE.match(dbname) or not _NAME_RE.match(user):
            raise ValueError("dbname/user must be simple lowercase identifiers")
        self.dbname = dbname
        self.user = user  # database superuser name
        self.host = "127.0.0.1"
        self.port: int | None = None
        self.base_dir = base_dir or default_base_dir()
        self.settings = {
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "200",
            "shared_buffers": "128MB",
            "log_min_messages": "warning",
            "log_min_error_statement": "panic",
            "listen_addresses": "127.0.0.1",
            **(settings or {}),
        }
        self.start_timeout = start_timeout
        self.bindir: Path | None = None
        self.datadir: Path | None = None
        self.startup_seconds: float | None = None
        self._root: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: Path | None = None
        self._uid: int | None = None
        self._gid: int | None = None
        self._os_user: str | None = None

    # ------------------------------------------------------------------ public API
    @property
    def dsn(self) -> str:
        return self.dsn_for(self.dbname)

    def dsn_for(self, dbname: str) -> str:
        if self.port is None:
            raise RuntimeError("PostgresServer is not started")
        return f"postgresql://{self.user}@{self.host}:{self.port}/{dbname}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> PostgresServer:
        if self._proc is not None:
            return self
        t0 = time.monotonic()
        self.bindir = find_pg_bindir()
        self._setup_user()
        _remove_stale_dirs(self.base_dir, _DIR_PREFIX)
        self._root = Path(tempfile.mkdtemp(prefix=f"{_DIR_PREFIX}{os.getpid()}-", dir=self.base_dir))
        os.chmod(self._root, 0o700)
        self.datadir = self._root / "data"
        self._log = self._root / "postgres.log"
        self._log.touch()
        if self._uid is not None:
            os.chown(self._root, self._uid, self._gid)
            os.chown(self._log, self._uid, self._gid)
        atexit.register(self.stop)
        try:
            self._initdb()
            last_error = ""
            for _attempt in range(3):
                self.port = _free_port()
                last_error = self._launch()
                if not last_error:
                    break
            else:
                raise RuntimeError(f"PostgreSQL failed to start: {last_error}")
            self._psql("postgres", f'CREATE DATABASE "{self.dbname}"')
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - t0
        return self

    def create_database(self, name: str, *, template: str | None = None) -> str:
        """Create database ``name`` (optionally a copy of ``template``) and return its DSN."""
        if not _NAME_RE.match(name) or (template and not _NAME_RE.match(template)):
            raise ValueError("database names must be simple lowercase identifiers")
        sql = f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")
        self._psql("postgres", sql)
        return self.dsn_for(name)

    def drop_database(self, name: str) -> None:
        if not _NAME_RE.match(name):
            raise ValueError("database names must be simple lowercase identifiers")
        self._psql("postgres", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def psql(self, sql: str, dbname: str | None = None) -> str:
        """Run SQL with psql (no event loop needed); returns unaligned, tuples-only output."""
        return self._psql(dbname or self.dbname, sql)

    def stop(self) -> None:
        """Fast shutdown (SIGINT), escalating to SIGQUIT/SIGKILL; remove the data dir. Idempotent."""
        atexit.unregister(self.stop)
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            for sig, wait in ((signal.SIGINT, 10.0), (signal.SIGQUIT, 5.0), (signal.SIGKILL, 5.0)):
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(sig)
                try:
                    proc.wait(timeout=wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None

    def log_tail(self, lines: int = 40) -> str:
        if self._log is None or not self._log.exists():
            return ""
        return "\n".join(self._log.read_text(errors="replace").splitlines()[-lines:])

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<PostgresServer {self.dsn if self.port else 'stopped'}>"

    # ------------------------------------------------------------------ internals
    def _setup_user(self) -> None:
        if os.geteuid() == 0:
            pw = _ensure_os_user()
            self._uid, self._gid, self._os_user = pw.pw_uid, pw.pw_gid, pw.pw_name
        else:
            self._uid = self._gid = None
            self._os_user = pwd.getpwuid(os.geteuid()).pw_name

    def _as_user(self, argv: list[str], *, pdeathsig: str | None = None) -> list[str]:
        """Wrap argv in setpriv: drop to the OS user (if root) and set the parent-death signal."""
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            if self._uid is not None:
                return ["runuser", "-u", self._os_user or "postgres", "--", *argv]
            return argv
        wrap = [setpriv]
        if self._uid is not None:
            wrap += [f"--reuid={self._uid}", f"--regid={self._gid}", "--init-groups"]
        if pdeathsig:
            wrap += [f"--pdeathsig={pdeathsig}"]
        return [*wrap, "--", *argv]

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(LC_ALL="C", LANG="C", TZ="UTC")
        if self._os_user:
            home = pwd.getpwnam(self._os_user).pw_dir
            env.update(USER=self._os_user, LOGNAME=self._os_user, HOME=home if os.path.isdir(home) else "/")
        return env

    def _initdb(self) -> None:
        """Fill the data dir: a copy of a cached initdb result (made once per machine) or initdb."""
        assert self.bindir and self.datadir and self._root
        if os.environ.get("VIDGATE_PG_NO_INITDB_CACHE") == "1":
            self._run_initdb(self.datadir)
        else:
            cache = self._initdb_cache()
            out = subprocess.run(["cp", "-a", str(cache), str(self.datadir)], capture_output=True, text=True)
            if out.returncode != 0:
                raise RuntimeError(f"copying the initdb cache failed: {out.stderr}")
        # Only the private socket and 127.0.0.1 may connect (initdb's default also allows ::1).
        hba = "local all all trust\nhost all all 127.0.0.1/32 trust\n"
        (self.datadir / "pg_hba.conf").write_text(hba)

    def _initdb_cache(self) -> Path:
        """``<base>/vidgate-pg-initdb-<key>``: initdb output for these binaries, user and options.

        initdb takes 1-2 s; copying its 40 MB result takes ~0.1 s. The cache is built in a private
        dir and renamed into place atomically, so concurrent test processes never see half of it.
        """
        assert self.bindir and self._root
        postgres = self.bindir / "postgres"
        owner = self._uid if self._uid is not None else os.geteuid()
        key_src = f"{self.bindir}|{postgres.stat().st_mtime_ns}|{owner}|{self._initdb_args()}"
        cache = Path(self.base_dir) / f"vidgate-pg-initdb-{hashlib.sha256(key_src.encode()).hexdigest()[:16]}"
        if not (cache / "PG_VERSION").exists():
            build = self._root / "initdb-build"
            self._run_initdb(build)
            with contextlib.suppress(OSError):  # another process may have won the race: fine
                os.rename(build, cache)
            shutil.rmtree(build, ignore_errors=True)
        return cache

    def _initdb_args(self) -> list[str]:
        return ["-U", self.user, "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync"]

    def _run_initdb(self, target: Path) -> None:
        assert self.bindir
        argv = [str(self.bindir / "initdb"), "-D", str(target), *self._initdb_args()]
        out = subprocess.run(self._as_user(argv), env=self._env(), capture_output=True, text=True, cwd="/", timeout=120)
        if out.returncode != 0:
            raise RuntimeError(f"initdb failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")

    def _launch(self) -> str:
        """Start the postmaster; return "" when it is ready, else an error description."""
        assert self.bindir and self.datadir and self._log and self.port
        argv = [str(self.bindir / "postgres"), "-D", str(self.datadir), "-p", str(self.port)]
        argv += ["-k", str(self.datadir)]
        for key, value in self.settings.items():
            argv += ["-c", f"{key}={value}"]
        with open(self._log, "ab") as log:
            self._proc = spawn(
                self._as_user(argv, pdeathsig="INT"),
                env=self._env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd="/",
                start_new_session=True,
            )
        pidfile = self.datadir / "postmaster.pid"
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                self._proc = None
                return f"postgres exited early; log:\n{self.log_tail()}"
            # Line 8 of postmaster.pid is the status; "ready" once it accepts connections.
            with contextlib.suppress(OSError):
                lines = pidfile.read_text().splitlines()
                if len(lines) >= 8 and lines[7].strip() == "ready":
                    return ""
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"PostgreSQL not ready after {self.start_timeout}s; log:\n{self.log_tail()}")

    def _psql(self, dbname: str, sql: str) -> str:
        assert self.bindir and self.port
        argv = [str(self.bindir / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"]
        argv += ["-h", self.host, "-p", str(self.port), "-U", self.user, "-d", dbname, "-c", sql]
        out = subprocess.run(argv, env=self._env(), capture_output=True, text=True, timeout=60)
        if out.returncode != 0:
            raise RuntimeError(f"psql failed: {sql!r}: {out.stderr.strip()}")
        return out.stdout
