"""The OpenAI fake from ``tests/fakes`` under Granian in its own process, with a recorder in front.

``python -m bench.fake_upstream --port N`` (or ``python -m bench.common fake --port N``) serves it:
every request's arrival time, method, path and ``Idempotency-Key``, readable at ``GET /_bench/log``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from bench.machine import descendants
from bench.processes import ROOT, _free_port, _pin, stop_server

FAKE_KEY = "sk-bench"


class FakeProcess:
    """``tests/fakes/openai_fake.OpenAIFake`` served by Granian in a child process, with a recorder.

    ``log()`` returns ``[(arrival epoch ms, method, path, idempotency key), ...]``; ``pause(True)``
    makes polls answer the job's current state without advancing it; ``configure(polls=N)`` sets
    how many polls complete a job.
    """

    def __init__(self, *, polls_to_complete: int = 3, cores: str = "1", log: Path | None = None) -> None:
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        out = log.open("ab") if log is not None else subprocess.DEVNULL
        self.proc = subprocess.Popen(
            [*_pin(cores), sys.executable, "-m", "bench.fake_upstream", "--port", str(self.port)],
            env={
                **os.environ,
                "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")]),
                "BENCH_FAKE_POLLS": str(polls_to_complete),
            },
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT if log is not None else subprocess.DEVNULL,
            start_new_session=True,
        )
        if log is not None:
            out.close()  # type: ignore[union-attr]
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{self.base_url}/_bench/log?since=0", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the fake upstream did not start")
            time.sleep(0.05)

    def log(self, since: int = 0) -> list[tuple[float, str, str, str | None]]:
        r = httpx.get(f"{self.base_url}/_bench/log", params={"since": since}, timeout=60)
        r.raise_for_status()
        return [tuple(e) for e in r.json()]  # type: ignore[misc]

    def pause(self, on: bool) -> None:
        httpx.post(f"{self.base_url}/_bench/pause", params={"on": int(on)}, timeout=10).raise_for_status()

    def configure(self, *, polls: int) -> None:
        httpx.post(f"{self.base_url}/_bench/config", params={"polls": polls}, timeout=10).raise_for_status()

    def pids(self) -> list[int]:
        return descendants(self.proc.pid)

    def providers_toml(self, path: Path, poll_interval: float, timeout: float = 30.0) -> Path:
        path.write_text(
            "[providers.openai]\n"
            f'api_key = "{FAKE_KEY}"\n'
            f'base_url = "{self.base_url}/v1"\n'
            f"poll_interval_seconds = {poll_interval}\n"
            f"timeout_seconds = {timeout}\n"
        )
        return path

    def stop(self) -> None:
        stop_server(self.proc)  # type: ignore[arg-type]

    def __enter__(self) -> FakeProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _fake_app() -> Any:
    """The Granian factory for ``FakeProcess``: the OpenAI fake behind a recorder (runs in the child)."""
    import orjson
    from fakes.openai_fake import OpenAIFake

    fake = OpenAIFake(api_key=FAKE_KEY, polls_to_complete=int(os.environ.get("BENCH_FAKE_POLLS", "3")))
    entries: list[tuple[float, str, str, str | None]] = []
    state = {"paused": False}
    poll_path = re.compile(r"^/v1/videos/(video_[0-9a-f]+)$")

    async def reply(send: Any, status: int, body: bytes) -> None:
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await fake.app(scope, receive, send)
        path = scope["path"]
        if path.startswith("/_bench/"):
            params = dict(p.split("=", 1) for p in scope["query_string"].decode().split("&") if "=" in p)
            if path == "/_bench/log":
                return await reply(send, 200, orjson.dumps(entries[int(params.get("since", 0)) :]))
            if path == "/_bench/pause":
                state["paused"] = params.get("on") == "1"
            elif path == "/_bench/config":
                fake.polls_to_complete = int(params["polls"])
            return await reply(send, 200, b"{}")
        key = next((v.decode() for k, v in scope["headers"] if k == b"idempotency-key"), None)
        entries.append((time.time() * 1000, scope["method"], path, key))
        m = poll_path.match(path)
        if state["paused"] and scope["method"] == "GET" and m and m.group(1) in fake.jobs:
            return await reply(send, 200, orjson.dumps(fake._video(fake.jobs[m.group(1)])))
        fake.requests.clear()  # the recorder above keeps what the benches need; this list would only grow
        return await fake.app(scope, receive, send)

    return app


def _serve_fake(port: int) -> None:
    from granian import Granian
    from granian.constants import Interfaces

    Granian(
        "bench.fake_upstream:_fake_app",
        address="127.0.0.1",
        port=port,
        interface=Interfaces.ASGI,
        workers=1,
        factory=True,
        log_access=False,
        log_enabled=False,
        backlog=4096,
    ).serve()


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description="serve the recorded OpenAI fake")
    parser.add_argument("--port", type=int, required=True)
    _serve_fake(parser.parse_args(argv).port)


if __name__ == "__main__":
    main()
