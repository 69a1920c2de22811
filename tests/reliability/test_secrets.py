"""Secrets stay out of logs and off disk, and text from outside cannot forge a log line.

- Logs: a traceback shows code and the exception, never local variables, and nothing that holds a
  secret shows it, in the text and JSON formats (in process, on the logging rules themselves); a
  gateway with every kind of secret (admin key, signing secret, sealing key, an operator's provider
  key, a request's own provider key, a webhook secret) at DEBUG writes none of them, even while every
  job step fails with a traceback.
- At rest: a request's own provider keys are sealed in the job's row while it runs and cleared by the
  write that ends it (completed, failed, cancelled after the upstream cancel), on both backends;
  rows from before sealing are cleared by the migration; the data dir, the database and the signing
  secret are created owner-only.
- Injection: an upstream error message carrying newlines, a terminal escape and Unicode line
  separators, logged by the worker, never starts a line of its own, in either format.
"""

from __future__ import annotations

import base64
import io
import logging
import os
import pickle
import sqlite3
import stat
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import orjson
import pytest
from fakes.openai_fake import OpenAIFake
from fakes.runway_fake import RunwayFake
from fakes.server import FakeUpstream, free_port
from helpers.backends import database_url, rows, start
from helpers.gateway import ADMIN_KEY, GatewayProcess, wait_status
from helpers.ledger import check_ledger
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from vidgate.gateway.logs import configure
from vidgate.gateway.settings import load_settings
from vidgate.gateway.storage.migrate import migrate

BACKENDS = [b for b in os.environ.get("VIDGATE_TEST_BACKENDS", "sqlite,postgres").split(",") if b]
TERMINAL = {"completed", "failed", "cancelled", "expired"}
SIGNING = "signing-canary-5d0f2a9c7e41b8"
SEALING = "sealing-canary-93ab61e0c2d7f4"
OPERATOR = "sk-operator-canary-7a1c3e5b9d"
OWN_OPENAI = "sk-own-canary-2e8f0a6c4b"
OWN_RUNWAY = "key_own_canary_b7d31f09e2a4"
LOCAL = "local-variable-canary-4c9e1a"
PROMPT = "prompt-canary-0b6d2f8e31"
HOOK_SECRET = "whsec_" + base64.b64encode(b"webhook-secret-canary-32-bytes!!").decode()
FORGED = "2099-01-01T00:00:00.000000Z [critical ] forged"
SORA = {"model": "openai/sora-2", "prompt": "a lighthouse", "duration": 4, "size": "1280x720"}
GEN45 = {"model": "runway/gen-4.5", "prompt": "a lighthouse", "duration": 5, "size": "1280x720"}
PROCEDURAL = {"model": "vidgate/procedural", "prompt": PROMPT, "duration": 1, "size": "160x90"}


def wait_for(check: Any, timeout: float = 30.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def no_canary(text: str, *canaries: str) -> None:
    leaked = [c for c in canaries if c in text]
    assert not leaked, f"leaked into the log: {leaked}"


# ---- secrets in logs ---------------------------------------------------------------------------


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """The in-process tests configure the process's logging; put it back as it was afterwards."""
    ours, top = logging.getLogger("vidgate"), logging.getLogger()
    saved = (ours.handlers[:], ours.level, ours.propagate, top.handlers[:])
    yield
    ours.handlers[:], ours.level, ours.propagate, top.handlers[:] = saved[0], saved[1], saved[2], saved[3]


def capture(fmt: str) -> io.StringIO:
    configure(fmt, "DEBUG")
    stream = io.StringIO()
    handler = logging.getLogger("vidgate").handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    return stream


def fail_with_secrets_in_scope(settings: Any, provider_header: str) -> None:
    own_key = LOCAL  # noqa: F841  (a local a traceback with locals would print)
    raise RuntimeError("upstream refused the request")


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_logging_shows_no_locals_and_no_secret(fmt: str, tmp_path: Path, restore_logging: None) -> None:
    env = {
        "VIDGATE_DATA_DIR": str(tmp_path / "data"),
        "VIDGATE_ADMIN_KEY": ADMIN_KEY,
        "VIDGATE_SIGNING_SECRET": SIGNING,
        "VIDGATE_PROVIDERS__OPENAI__API_KEY": OPERATOR,
    }
    settings = load_settings(env=env)
    stream = capture(fmt)
    log = logging.getLogger("vidgate.worker")
    try:
        fail_with_secrets_in_scope(settings, f"openai={OWN_OPENAI}")
    except RuntimeError:
        log.exception("job %s: step failed", "vid_1")
    log.info("settings at start: %s", settings)  # a careless log call of tomorrow
    log.debug("provider %r", settings.providers["openai"])
    out = stream.getvalue()
    assert "RuntimeError: upstream refused the request" in out and "fail_with_secrets_in_scope" in out, out
    no_canary(out, ADMIN_KEY, SIGNING, OPERATOR, OWN_OPENAI, LOCAL)
    if fmt == "json":
        assert all(orjson.loads(line) for line in out.splitlines()), out
    print(
        f"\nlogs [{fmt}]: a traceback from a frame holding the settings and a provider key, and the "
        f"settings logged whole: {len(out)} characters, the exception shown, no local and no secret"
    )


def test_secret_shows_only_stars(tmp_path: Path, restore_logging: None) -> None:
    from vidgate.gateway.providers.base import ProviderConfig
    from vidgate.gateway.secret import Secret

    key = Secret(OWN_OPENAI)
    shown = [repr(key), str(key), f"{key}", "%s %r" % (key, key)]  # noqa: UP031  (as logging formats)
    shown.append(repr(ProviderConfig("openai", api_key=OWN_OPENAI)))
    shown.append(repr(ProviderConfig("kling", api_key="ak", extra={"secret_key": LOCAL, "region": "sg"})))
    shown.append(repr(load_settings(env={"VIDGATE_DATA_DIR": str(tmp_path), "VIDGATE_SECRETS_KEY": SEALING})))
    stream = capture("text")
    logging.getLogger("vidgate.api").info("byok %s", {"openai": key})
    shown.append(stream.getvalue())
    for text in shown:
        no_canary(text, OWN_OPENAI, LOCAL, SEALING)
    assert "**********" in shown[0] and key.reveal() == OWN_OPENAI and pickle.loads(pickle.dumps(key)) == key


def blocked_blobs(data_dir: Path) -> Path:
    """A file where the blob store keeps its video folder: storing any output fails with an OSError."""
    (data_dir / "blobs").mkdir(parents=True)
    blocker = data_dir / "blobs" / "videos"
    blocker.write_bytes(b"")
    return blocker


def failed_steps(log: str) -> int:
    """Steps that failed, or outputs whose storing failed: both are logged, the first with a traceback."""
    return log.count("step failed") + log.count("storing its output failed")


def test_gateway_logs_no_secret_while_steps_fail(tmp_path: Path) -> None:
    openai = OpenAIFake(api_key=OPERATOR, polls_to_complete=2)
    runway = RunwayFake(api_key=OWN_RUNWAY, polls_to_complete=2)
    servers = [FakeUpstream(openai.app).start(), FakeUpstream(runway.app).start()]
    config = tmp_path / "providers.toml"
    config.write_text(
        f'[providers.openai]\napi_key = "{OPERATOR}"\nbase_url = "{servers[0].base_url}/v1"\n'
        f'poll_interval_seconds = 0.2\n\n[providers.runway]\nbase_url = "{servers[1].base_url}"\n'
        "poll_interval_seconds = 0.2\n"
    )
    env = {
        "VIDGATE_CONFIG": str(config),
        "VIDGATE_LOG_LEVEL": "DEBUG",
        "VIDGATE_SIGNING_SECRET": SIGNING,
        "VIDGATE_SECRETS_KEY": SEALING,
        "VIDGATE_WEBHOOK_BACKOFF_BASE_SECONDS": "0.2",
    }
    blocker = blocked_blobs(tmp_path / "gw")
    gw = GatewayProcess(tmp_path / "gw", env=env).start()
    try:
        with gw.client(gw.new_key(balance=50.0)) as api:
            hook = {"url": f"http://127.0.0.1:{free_port()}/hook", "secret": HOOK_SECRET}
            jobs = [
                api.post("/v1/videos", json={**PROCEDURAL, "webhook": hook}).json()["id"],
                api.post("/v1/videos", json=SORA).json()["id"],
                api.post("/v1/videos", json=GEN45, headers={"X-Provider-Key": f"runway={OWN_RUNWAY}"}).json()["id"],
            ]
            wait_for(lambda: failed_steps(gw.log_path.read_text()) >= 3, what="three failed steps")
            blocker.unlink()  # the store works again: every job completes on its next step
            assert {wait_status(api, j, TERMINAL, timeout=60)["status"] for j in jobs} == {"completed"}
            api.post(f"/v1/videos/{jobs[0]}/download_url", json={"ttl_seconds": 600})
    finally:
        gw.stop()
        for s in servers:
            s.stop()
    log = gw.log_path.read_text(errors="replace")
    assert "Traceback (most recent call last)" in log and "NotADirectoryError" in log, log[-3000:]
    no_canary(log, ADMIN_KEY, SIGNING, SEALING, OPERATOR, OWN_RUNWAY, HOOK_SECRET, PROMPT)
    print(
        f"\nlogs [gateway]: {failed_steps(log)} failed steps logged with tracebacks, at DEBUG; "
        f"no admin key, signing secret, sealing key, provider key, own key, webhook secret or prompt "
        f"in {len(log)} characters"
    )


# ---- secrets at rest ---------------------------------------------------------------------------


def jobs_text(gw: GatewayProcess) -> str:
    if database_url(gw).startswith("sqlite:///"):
        return "\n".join(str(r) for r in rows(gw, "SELECT * FROM jobs"))
    return "\n".join(str(r) for r in rows(gw, "SELECT CAST(j AS TEXT) FROM jobs j"))


def stored_keys(gw: GatewayProcess, job_id: str) -> str | None:
    return rows(gw, "SELECT byok FROM jobs WHERE id = ?", job_id)[0][0]


@pytest.mark.parametrize("kind", BACKENDS)
def test_own_keys_sealed_while_running_and_cleared_when_ended(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    openai = OpenAIFake(api_key=OWN_OPENAI, polls_to_complete=2)
    runway = RunwayFake(api_key=OWN_RUNWAY, polls_to_complete=10**6)  # runs until cancelled
    servers = [FakeUpstream(openai.app).start(), FakeUpstream(runway.app).start()]
    config = tmp_path / "providers.toml"
    config.write_text(  # the gateway has no key of its own for either
        f'[providers.openai]\nbase_url = "{servers[0].base_url}/v1"\npoll_interval_seconds = 0.2\n\n'
        f'[providers.runway]\nbase_url = "{servers[1].base_url}"\npoll_interval_seconds = 0.2\n'
    )
    extra = {}
    if kind == "postgres":
        extra = {"pg": request.getfixturevalue("pg_server"), "s3": request.getfixturevalue("s3_server")}
    env = {"VIDGATE_CONFIG": str(config), "VIDGATE_LOG_LEVEL": "DEBUG"}
    gw = start(kind, tmp_path / "gw", env=env, **extra)
    try:
        with gw.client(gw.new_key(balance=50.0)) as api:
            running = api.post("/v1/videos", json=GEN45, headers={"X-Provider-Key": f"runway={OWN_RUNWAY}"}).json()
            wait_status(api, running["id"], {"processing"}, timeout=30)
            sealed = stored_keys(gw, running["id"])
            assert sealed is not None and sealed.startswith("v1:") and OWN_RUNWAY not in sealed, sealed
            assert OWN_RUNWAY not in jobs_text(gw)

            done = api.post("/v1/videos", json=SORA, headers={"X-Provider-Key": f"openai={OWN_OPENAI}"}).json()
            bad = api.post("/v1/videos", json=SORA, headers={"X-Provider-Key": "openai=sk-wrong-canary"}).json()
            assert wait_status(api, done["id"], TERMINAL, timeout=30)["status"] == "completed"
            assert wait_status(api, bad["id"], TERMINAL, timeout=30)["status"] == "failed"

            assert api.post(f"/v1/videos/{running['id']}/cancel").json()["status"] == "cancelled"
            # The worker still stops the upstream job with the owner's key, then clears it.
            wait_for(lambda: stored_keys(gw, running["id"]) is None, what="the cancelled job's keys cleared")
            cancels = [r for r in runway.requests if r["method"] == "DELETE"]
            assert cancels and cancels[0]["headers"]["authorization"] == f"Bearer {OWN_RUNWAY}", runway.requests
            for job in (done, bad):
                assert stored_keys(gw, job["id"]) is None, job["id"]
        dump = jobs_text(gw)
        no_canary(dump, OWN_RUNWAY, OWN_OPENAI, "sk-wrong-canary")
        check_ledger(gw)
    finally:
        gw.stop()
        for s in servers:
            s.stop()
    no_canary(gw.log_path.read_text(errors="replace"), OWN_RUNWAY, OWN_OPENAI, "sk-wrong-canary")
    if kind == "sqlite":
        # A row from before sealing, its job long ended: the migration that came with sealing clears it.
        url = database_url(gw)
        legacy = orjson.dumps({"openai": OWN_OPENAI}).decode()
        head = rows(gw, "SELECT version_num FROM alembic_version")[0][0]
        path = url.split("sqlite:///", 1)[1]
        with closing(sqlite3.connect(path)) as conn, conn:
            conn.execute("UPDATE jobs SET byok = ? WHERE id = ?", (legacy, done["id"]))
            conn.execute("UPDATE alembic_version SET version_num = '0004'")
        migrate(url, "0005")
        with closing(sqlite3.connect(path)) as conn, conn:
            conn.execute("UPDATE alembic_version SET version_num = ?", (head,))
        assert stored_keys(gw, done["id"]) is None
    print(
        f"\nat rest [{kind}]: own keys sealed (AES-GCM) while the job ran; cleared on completed, failed "
        "and cancelled (after the upstream cancel, made with the owner's key); none in the jobs table"
    )


def test_own_keys_cleared_on_expiry_after_the_upstream_cancel(tmp_path: Path) -> None:
    runway = RunwayFake(api_key=OWN_RUNWAY, polls_to_complete=10**6)
    server = FakeUpstream(runway.app).start()
    config = tmp_path / "providers.toml"
    config.write_text(f'[providers.runway]\nbase_url = "{server.base_url}"\npoll_interval_seconds = 0.2\n')
    env = {"VIDGATE_CONFIG": str(config), "VIDGATE_DEADLINE_OVERRIDE_SECONDS": "3"}
    gw = GatewayProcess(tmp_path / "gw", env=env).start()
    try:
        with gw.client(gw.new_key(balance=50.0)) as api:
            job = api.post("/v1/videos", json=GEN45, headers={"X-Provider-Key": f"runway={OWN_RUNWAY}"}).json()["id"]
            assert wait_status(api, job, TERMINAL, timeout=30)["status"] == "expired"
            wait_for(lambda: any(r["method"] == "DELETE" for r in runway.requests), what="the upstream cancel")
        # The expiry cleared the keys in its own write; the cancel after it used the claimed row's copy.
        assert stored_keys(gw, job) is None
        cancel = next(r for r in runway.requests if r["method"] == "DELETE")
        assert cancel["headers"]["authorization"] == f"Bearer {OWN_RUNWAY}"
        check_ledger(gw)
    finally:
        gw.stop()
        server.stop()


def test_sealed_keys_are_bound_to_their_key_and_job() -> None:
    from vidgate.gateway.secret import SealError, Secret, SecretBox, open_keys, seal_keys

    box = SecretBox(SIGNING)
    token = seal_keys(box, "vid_a", {"openai": Secret(OWN_OPENAI)})
    assert OWN_OPENAI not in token and open_keys(box, "vid_a", token)["openai"].reveal() == OWN_OPENAI
    for other_box, job in ((SecretBox("another key"), "vid_a"), (box, "vid_b")):
        with pytest.raises(SealError):
            open_keys(other_box, job, token)
    legacy = orjson.dumps({"openai": OWN_OPENAI}).decode()  # written before sealing: still runs
    assert open_keys(box, "vid_a", legacy)["openai"].reveal() == OWN_OPENAI


def test_data_dir_database_and_secret_created_owner_only(tmp_path: Path) -> None:
    private = tmp_path / "gw" / "data"  # created by the gateway itself (the helper makes gw/ for its log)
    gw = GatewayProcess(tmp_path / "gw", args=("--data-dir", str(private))).start()
    try:
        with gw.client(gw.new_key()) as api:
            wait_status(api, api.post("/v1/videos", json=PROCEDURAL).json()["id"], {"completed"})
        modes = {
            p.name: stat.S_IMODE(p.stat().st_mode)
            for p in (private, *private.iterdir())
            if p.name in ("data", "signing_secret") or p.name.startswith("vidgate.db")
        }
    finally:
        gw.stop()
    assert modes[private.name] == 0o700, modes
    assert {"vidgate.db", "vidgate.db-wal", "signing_secret"} <= set(modes), modes
    assert all(mode == 0o600 for name, mode in modes.items() if name != private.name), modes
    print(f"\nfile modes: {', '.join(f'{n} {m:o}' for n, m in sorted(modes.items()))}")


# ---- log injection -----------------------------------------------------------------------------


class Refusing:
    """An upstream speaking just enough Runway to take a job, whose cancel fails with a message that
    carries a forged log line after a newline, a carriage return, a terminal escape and U+2028."""

    MESSAGE = f"cannot stop the task\n{FORGED} one\r{FORGED} two\x1b[2J\u2028{FORGED} three\x85{FORGED} four"

    def __init__(self) -> None:
        self.cancels = 0

        async def create(request: Request) -> Response:
            return JSONResponse({"id": "task-1"})

        async def task(request: Request) -> Response:
            return JSONResponse({"id": "task-1", "status": "RUNNING", "progress": 0.1})

        async def cancel(request: Request) -> Response:
            self.cancels += 1
            return JSONResponse({"error": self.MESSAGE}, status_code=500)

        self.server = FakeUpstream(
            Starlette(
                routes=[
                    Route("/v1/text_to_video", create, methods=["POST"]),
                    Route("/v1/tasks/{task_id}", task, methods=["GET"]),
                    Route("/v1/tasks/{task_id}", cancel, methods=["DELETE"]),
                ]
            )
        ).start()


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_upstream_text_cannot_forge_a_log_line(fmt: str, tmp_path: Path) -> None:
    upstream = Refusing()
    config = tmp_path / "providers.toml"
    config.write_text(
        f'[providers.runway]\napi_key = "key_x"\nbase_url = "{upstream.server.base_url}"\npoll_interval_seconds = 0.2\n'
    )
    gw = GatewayProcess(tmp_path / "gw", env={"VIDGATE_CONFIG": str(config), "VIDGATE_LOG_FORMAT": fmt}).start()
    try:
        with gw.client(gw.new_key(balance=50.0)) as api:
            job = api.post("/v1/videos", json=GEN45).json()["id"]
            wait_status(api, job, {"processing"}, timeout=30)
            assert api.post(f"/v1/videos/{job}/cancel").status_code == 200
            wait_for(lambda: "upstream cancel failed" in gw.log_path.read_text(), what="the cancel failure logged")
    finally:
        gw.stop()
        upstream.server.stop()
    log = gw.log_path.read_text(errors="replace")
    logged = [line for line in log.split("\n") if "upstream cancel failed" in line]
    assert upstream.cancels >= 1 and logged, log[-3000:]
    # Lines as any reader splits them: on \n, and on \r, \x85 and U+2028 as str.splitlines() does too.
    forged = [line for line in log.splitlines() if line.lstrip().startswith(FORGED[:20])]
    assert not forged and "\x1b" not in log, forged
    if fmt == "json":
        assert orjson.loads(logged[0])["event"].count(FORGED) == 4
    print(
        f"\ninjection [{fmt}]: an upstream message with 4 forged records behind \\n, \\r, ESC, U+2028 and "
        f"NEL logged as one line: {logged[0][:160]}…"
    )
