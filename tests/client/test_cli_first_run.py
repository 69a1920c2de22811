"""A first run with the real ``vidgate`` command: start-up failures are one line and exit 1, a port in
use is refused, settings come from the env, keys land where the server looks, ``generate -o`` is
checked before anything is charged, and every command answers ``-h`` and ``--version``."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from fakes.server import free_port
from helpers.gateway import GatewayProcess

from vidgate import __version__
from vidgate.gateway.storage.migrate import HEAD, known_revisions, migrate

COMMANDS = [
    (),
    ("serve",),
    ("api",),
    ("worker",),
    ("migrate",),
    ("generate",),
    ("models",),
    ("ledger",),
    ("leases",),
    ("keys",),
    ("keys", "create"),
    ("keys", "list"),
    ("keys", "revoke"),
    ("keys", "topup"),
    ("keys", "limits"),
    ("videos",),
    ("videos", "list"),
    ("videos", "get"),
    ("videos", "download"),
    ("videos", "cancel"),
    ("videos", "delete"),
    ("jobs",),
    ("jobs", "list"),
    ("jobs", "show"),
    ("jobs", "requeue"),
    ("jobs", "fail"),
    ("storage",),
    ("storage", "reconcile"),
]


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """The real command; one that should have refused but serves instead is killed and reported."""
    full = {**os.environ, "COLUMNS": "120", **(env or {})}
    proc = subprocess.Popen(
        [sys.executable, "-m", "vidgate.cli.main", *args],
        env=full,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        out, err = proc.communicate()
        raise AssertionError(f"vidgate {' '.join(args)} kept running:\n{err[-2000:]}") from None
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def refused(out: subprocess.CompletedProcess[str], *words: str) -> str:
    """The one stderr line of a refused start, after checking it is one line, says ``words``, exits 1."""
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 1, out.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    assert "Traceback" not in out.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def test_a_second_server_on_a_port_in_use_is_refused(gateway: GatewayProcess, tmp_path: Path) -> None:
    before = httpx.get(gateway.base_url + "/healthz").headers["vidgate-database"]
    for command in ("serve", "api"):
        out = run(command, "--port", str(gateway.port), "--data-dir", str(tmp_path / command))
        print(f"\n{command}: {refused(out, str(gateway.port), 'already in use')}")
    # Every request still reaches the first server, and only it: the refused ones never bound the port.
    seen = {httpx.get(gateway.base_url + "/healthz").headers["vidgate-database"] for _ in range(20)}
    assert seen == {before}


def test_start_up_failures_are_one_line_and_exit_1(gateway: GatewayProcess, tmp_path: Path) -> None:
    bad_toml = tmp_path / "bad.toml"
    bad_toml.write_text("providers = [\n")
    a_file = tmp_path / "a-file"
    a_file.write_text("not a directory")
    closed = f"postgresql://vidgate:hunter2@127.0.0.1:{free_port()}/vidgate"
    pg = {"VIDGATE_DATABASE_URL": closed, "VIDGATE_SIGNING_SECRET": "s3cret"}
    port = str(free_port())
    cases = {
        "config file not TOML": (("serve", "--port", port, "--config", str(bad_toml)), {}, ("bad.toml",)),
        "data dir is a file": (("serve", "--port", port, "--data-dir", str(a_file)), {}, ("not a directory",)),
        "a setting of the wrong type": (
            ("api", "--data-dir", str(tmp_path / "d")),
            {"VIDGATE_PORT": "eighty"},
            ("VIDGATE_PORT",),
        ),
        "database unreachable (api)": (
            ("api", "--port", port, "--data-dir", str(tmp_path / "d")),
            pg,
            ("cannot reach the database",),
        ),
        "database unreachable (worker)": (
            ("worker", "--data-dir", str(tmp_path / "d")),
            pg,
            ("cannot reach the database",),
        ),
        "worker without the signing secret": (
            ("worker", "--data-dir", str(tmp_path / "d")),
            {"VIDGATE_DATABASE_URL": closed},
            ("VIDGATE_SIGNING_SECRET",),
        ),
        "worker metrics port in use": (
            ("worker", "--data-dir", str(tmp_path / "w"), "--metrics-port", str(gateway.port)),
            {},
            ("already in use", "metrics"),
        ),
    }
    if os.geteuid() != 0:  # permissions do not bind root
        locked = tmp_path / "read-only"
        locked.mkdir()
        (locked / "signing_secret").write_text("kept\n")
        locked.chmod(0o500)
        cases["data dir read-only"] = (("serve", "--port", port, "--data-dir", str(locked)), {}, ("not writable",))
    for name, (args, env, words) in cases.items():
        line = refused(run(*args, env=env), *words)
        assert "hunter2" not in line  # a database URL is shown without its password
        print(f"\n{name}: {line}")


def test_host_and_port_come_from_the_env_and_flags_win(tmp_path: Path) -> None:
    env_port, flag_port = free_port(), free_port()
    env = {"VIDGATE_HOST": "127.0.0.1", "VIDGATE_PORT": str(env_port)}
    api = GatewayProcess(tmp_path / "api", env=env, command="api", port=env_port, args=("--workers", "1"))
    api.start = _start_without_address(api)  # type: ignore[method-assign]
    api.start()
    try:
        assert httpx.get(f"http://127.0.0.1:{env_port}/healthz").status_code == 200
    finally:
        api.stop()
    serve = GatewayProcess(tmp_path / "serve", env={"VIDGATE_PORT": str(env_port)}, port=flag_port).start()
    try:
        assert httpx.get(f"http://127.0.0.1:{flag_port}/healthz").status_code == 200
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{env_port}/healthz")
    finally:
        serve.stop()


def _start_without_address(proc: GatewayProcess):  # type: ignore[no-untyped-def]
    """``start`` with no ``--host``/``--port`` flags: the server must take them from the env."""

    def start(timeout: float = 30.0) -> GatewayProcess:
        proc.data_dir.mkdir(parents=True, exist_ok=True)
        args = [sys.executable, "-m", "vidgate.cli.main", proc.command, "--data-dir", str(proc.data_dir), *proc.args]
        log = proc.log_path.open("ab")
        proc.proc = subprocess.Popen(args, env=proc.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        proc.wait_ready(timeout)
        return proc

    return start


def test_keys_create_says_when_the_server_uses_another_database(gateway: GatewayProcess, tmp_path: Path) -> None:
    env = {"VIDGATE_BASE_URL": gateway.base_url}
    elsewhere = run("keys", "create", "--name", "elsewhere", "--data-dir", str(tmp_path / "elsewhere"), env=env)
    assert elsewhere.returncode == 0 and elsewhere.stdout.startswith("vg_")
    assert "uses another database" in elsewhere.stderr and str(tmp_path / "elsewhere") in elsewhere.stderr
    key = elsewhere.stdout.strip()
    assert httpx.get(gateway.base_url + "/v1/videos", headers={"Authorization": f"Bearer {key}"}).status_code == 401
    same = run("keys", "create", "--name", "same", "--data-dir", str(gateway.data_dir), env=env)
    assert same.returncode == 0 and "another database" not in same.stderr
    key = same.stdout.strip()
    assert httpx.get(gateway.base_url + "/v1/videos", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    print(f"\nhint: {elsewhere.stderr.strip().splitlines()[-1]}")


def test_generate_checks_the_output_before_creating_a_job(gateway: GatewayProcess, tmp_path: Path) -> None:
    key = gateway.new_key("output-check", balance=1.0)
    env = {"VIDGATE_BASE_URL": gateway.base_url, "VIDGATE_API_KEY": key}
    targets = {
        "an existing directory": (tmp_path, "is a directory"),
        "a missing directory": (tmp_path / "no" / "x.mp4", "not a directory"),
    }
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        targets["a read-only directory"] = (locked / "x.mp4", "cannot write")
    for name, (target, words) in targets.items():
        out = run("generate", "a quiet lake", "--size", "160x90", "--duration", "1", "-o", str(target), env=env)
        lines = out.stderr.strip().splitlines()
        assert out.returncode == 2 and len(lines) == 1 and words in lines[0], out.stderr
        print(f"\n{name}: {lines[0]}")
    with gateway.client(key) as api:
        assert api.get("/v1/videos").json()["data"] == []  # nothing was created, nothing held
        assert api.get("/v1/usage").json()["held"] == 0


def test_every_command_answers_h_and_version_and_its_help_has_no_stray_markup() -> None:
    def check(path: tuple[str, ...]) -> tuple[str, ...]:
        helped = run(*path, "-h")
        assert helped.returncode == 0 and "Usage: " in helped.stdout, (path, helped.stderr)
        for stray in ("<bool>", "[/", "[bold", "`", "\\b"):
            assert stray not in helped.stdout, (path, stray, helped.stdout)
        version = run(*path, "--version")
        assert version.returncode == 0 and version.stdout.strip() == f"vidgate {__version__}", (path, version)
        return path

    with ThreadPoolExecutor(4) as pool:
        done = list(pool.map(check, COMMANDS))
    assert len(done) == len(COMMANDS)


def test_the_sqlite_schema_is_upgraded_at_start_and_a_newer_one_refused(tmp_path: Path) -> None:
    older = tmp_path / "older"
    older.mkdir()
    migrate(f"sqlite:///{older / 'vidgate.db'}", revision=known_revisions()[-2])
    gw = GatewayProcess(older).start()  # the embedded database is upgraded in place, as it always was
    try:
        assert httpx.get(gw.base_url + "/readyz").status_code == 200
    finally:
        gw.stop()
    with sqlite3.connect(older / "vidgate.db") as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone()[0] == HEAD
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    for args in (("serve", "--port", str(free_port())), ("api", "--port", str(free_port())), ("worker",)):
        line = refused(run(*args, "--data-dir", str(older)), "9999", "newer than this release")
        print(f"\n{args[0]}: {line}")


def test_readyz_is_not_ready_while_the_database_cannot_be_written(tmp_path: Path) -> None:
    gw = GatewayProcess(tmp_path / "gw", env={"VIDGATE_READY_WRITE_PROBE_SECONDS": "0.2"}).start()
    try:
        assert httpx.get(gw.base_url + "/readyz").status_code == 200
        locker = sqlite3.connect(gw.data_dir / "vidgate.db", timeout=30, isolation_level=None, check_same_thread=False)
        locker.execute("BEGIN EXCLUSIVE")  # another writer holds the database: reads go on, writes cannot
        try:
            deadline, answer = time.monotonic() + 45, None
            while time.monotonic() < deadline:
                answer = httpx.get(gw.base_url + "/readyz", timeout=30)
                if answer.status_code == 503:
                    break
                time.sleep(0.3)
            assert answer is not None and answer.status_code == 503, answer.text if answer else None
            error = answer.json()["error"]
            print(f"\nwhile locked: {error['message']} {error.get('details')}")
        finally:
            locker.execute("ROLLBACK")
            locker.close()
        deadline = time.monotonic() + 30
        while httpx.get(gw.base_url + "/readyz", timeout=30).status_code != 200:
            assert time.monotonic() < deadline, "never ready again"
            time.sleep(0.3)
    finally:
        gw.stop()
