"""Start a real ``vidgate serve`` process on loopback for tests, and talk to it over HTTP."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from fakes.server import free_port

ADMIN_KEY = "admin-test-key"


class GatewayProcess:
    def __init__(
        self,
        data_dir: Path,
        *,
        env: dict[str, str] | None = None,
        command: str = "serve",
        port: int | None = None,
        log_name: str = "serve",
        args: tuple[str, ...] = (),
    ) -> None:
        self.data_dir = data_dir
        self.args = args
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "VIDGATE_ADMIN_KEY": ADMIN_KEY,
            "VIDGATE_ALLOW_PRIVATE_URLS": "1",
            "VIDGATE_LEASE_SECONDS": "3",
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        self.command = command
        self.log_path = data_dir / f"{log_name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> GatewayProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        args = [sys.executable, "-m", "vidgate.cli.main", self.command, "--data-dir", str(self.data_dir)]
        if self.command in ("serve", "api"):
            args += ["--host", "127.0.0.1", "--port", str(self.port)]
        args += self.args
        self.proc = subprocess.Popen(args, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        if self.command in ("serve", "api"):
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited with {self.proc.returncode}:\n{self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(self.base_url + "/healthz", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"gateway did not start:\n{self.log_path.read_text()[-3000:]}")

    def kill(self) -> None:
        """``kill -9`` the whole process group: the server and its workers die mid-flight."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()

    def admin(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=30)

    def new_key(self, name: str = "test", balance: float | None = None) -> str:
        body: dict[str, Any] = {"name": name}
        if balance is not None:
            body["balance"] = balance
        with self.admin() as c:
            r = c.post("/v1/admin/keys", json=body)
            r.raise_for_status()
            return r.json()["key"]

    def key_id(self, key: str) -> str:
        with self.admin() as admin:
            return next(k["id"] for k in admin.get("/v1/admin/keys").json()["data"] if key.startswith(k["prefix"]))

    def client(self, key: str) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30)


def configured_gateway(root: Path, config: str) -> GatewayProcess:
    """A started gateway in ``root`` whose config file (``root/config.toml``) holds ``config``."""
    path = root / "config.toml"
    path.write_text(config)
    return GatewayProcess(root / "gw", env={"VIDGATE_CONFIG": str(path)}).start()


def wait_status(client: httpx.Client, video_id: str, statuses: set[str], timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        r = client.get(f"/v1/videos/{video_id}")
        assert r.status_code == 200, r.text
        body = r.json()
        if body["status"] in statuses:
            return body
        time.sleep(0.1)
    raise AssertionError(f"{video_id} stayed {body.get('status')} (wanted {statuses}): {body}")


TIMED = ("download_url", "expires_at")  # signed links: their expiry moves with the clock


def stable(video: dict[str, Any], *also: str) -> dict[str, Any]:
    """A job view without the fields that depend on the second it was rendered in (and ``also``)."""
    drop = (*TIMED, *also)
    out = {k: v for k, v in video.items() if k not in drop}
    if "outputs" in out:
        out["outputs"] = [{k: v for k, v in o.items() if k not in drop} for o in out["outputs"]]
    return out
