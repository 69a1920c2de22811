"""Configuration from ``VIDGATE_*`` env vars and an optional TOML file (``VIDGATE_CONFIG``).

Env wins over the file; the file wins over defaults. Provider tables live only in the file
(``[providers.openai]``) plus ``VIDGATE_PROVIDERS__NAME__FIELD`` env overrides. Credentials are held as
``Secret`` so that logging the settings never writes them; the data dir and the files the gateway
creates in it are its owner's only.
"""

from __future__ import annotations

import os
import secrets
import tomllib
from dataclasses import dataclass, field, fields, replace
from functools import cached_property
from pathlib import Path
from typing import Any

from vidgate.gateway.base_url import BaseURL, parse_networks, public_url
from vidgate.gateway.catalog.configured import ConfiguredModel, configured_catalog, parse_models
from vidgate.gateway.providers.base import ProviderConfig
from vidgate.gateway.secret import Secret, SecretBox, secret

_TRUE = {"1", "true", "yes", "on"}
_UNSET = Secret("")


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path(".vidgate")
    database_url: str = ""
    blob_url: str = ""
    admin_key: Secret | None = None
    signing_secret: Secret = _UNSET
    # Seals the provider keys a request brings while its job runs; the signing secret when unset.
    # Every process that creates or works jobs must have the same one.
    secrets_key: Secret | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    # What every URL in an answer starts with (scheme, host, any path prefix), e.g.
    # https://videos.example.com; unset, each request's own scheme and Host.
    public_url: str = ""
    # Peers whose X-Forwarded-Proto and X-Forwarded-Host are believed: addresses or CIDRs,
    # comma-separated, or "*" for any. Loopback by default (a reverse proxy on the same machine);
    # empty trusts none.
    trusted_proxies: str = "127.0.0.0/8, ::1"
    # Web pages on these origins may call the API from a browser (CORS): comma-separated, e.g.
    # https://app.example.com, or "*" for any. Empty: no CORS headers, so only same-origin pages can.
    cors_origins: str = ""
    max_body_bytes: int = 1 << 20
    default_balance_usd: float = 10.0
    byok_fee_per_second_usd: float = 0.0
    allow_private_urls: bool = False
    retention_days: float = 30.0
    download_ttl_default: int = 900
    # An upstream that reads an input by URL only gets a link to the gateway's own copy of an upload or
    # earlier output: signed on public_url when that is https, else the object store's presigned URL
    # when that is https. It lasts this long after the job's create, and at least to the job's deadline.
    input_link_ttl_seconds: int = 3600
    # On an object store, GET /content answers 307 to a presigned URL of the object (valid for
    # download_ttl_default) instead of streaming it through the API; a local store always serves.
    content_redirect: bool = False
    worker_enabled: bool = True
    worker_concurrency: int = 32
    lease_seconds: float = 15.0
    render_parallel: int = 2
    deadline_override_seconds: int = 0  # when set, every job's deadline (tests and tight deployments)
    rate_limit_per_second: float = 0.0
    rate_limit_burst: int = 0
    max_concurrent_jobs_per_key: int = 0
    # Built-in renders one key may run at once, across every worker (0 = no limit): a key's backlog
    # of renders then waits its turn instead of taking every render thread.
    max_renders_per_key: int = 2
    # A failed job step is retried after this, doubling each time in a row, until the job fails.
    step_retry_seconds: float = 5.0
    max_step_failures: int = 30
    # On SIGTERM a worker stops claiming, lets the steps in flight finish for this long, then cancels
    # the rest and hands every lease it holds back at once, so another worker takes them over.
    worker_shutdown_grace_seconds: float = 20.0
    # Stored objects no job owns are removed once older than this, by a sweep run this often.
    orphan_grace_seconds: float = 3600.0
    orphan_sweep_seconds: float = 900.0
    # A deleted or expired job's objects the store did not confirm removing are retried after this,
    # doubling on each failure up to five minutes; due removals are looked for this often.
    deletion_retry_seconds: float = 5.0
    # Creates answer 503 storage_full below this much free disk; the reserve keeps deletes possible.
    disk_min_free_bytes: int = 64 << 20
    disk_reserve_bytes: int = 16 << 20
    max_websockets_per_key: int = 50
    # Long polls (GET /v1/videos/{id}?wait=N) held at once per server process; past it a poll answers at once.
    long_poll_max_waiters: int = 2000
    # The server's edge, against slow or greedy clients: a request head must arrive within
    # header_timeout_seconds and its body within body_timeout_seconds; one server process holds at most
    # max_connections connections; one client address has at most max_in_flight_per_client requests and
    # streams in flight (0: no cap; behind a reverse proxy every client shares the proxy's address).
    header_timeout_seconds: float = 10.0
    body_timeout_seconds: float = 30.0
    max_connections: int = 10_000
    max_in_flight_per_client: int = 256
    # When set, /metrics answers only a scrape bearing it (Authorization: Bearer …).
    metrics_token: Secret | None = None
    # A worker serves /metrics, /healthz and /readyz on this port (0: it serves none); the upstream
    # call counters live in the workers, so this is how they are scraped.
    worker_metrics_port: int = 0
    worker_metrics_host: str = "127.0.0.1"
    # /readyz writes to the database at most this often (a no-op update), not on every probe.
    ready_write_probe_seconds: float = 10.0
    webhook_backoff_base_seconds: float = 5.0
    # One delivery attempt: connecting, then the whole attempt until the answer's status line.
    webhook_connect_timeout_seconds: float = 5.0
    webhook_timeout_seconds: float = 10.0
    # Deliveries in flight to one endpoint (scheme, host, port) per process, so a slow receiver
    # holds at most this many of the deliverer's slots and every other endpoint keeps flowing.
    webhook_max_in_flight_per_endpoint: int = 4
    reference_max_bytes: int = 20 << 20
    upload_max_bytes: int = 100 << 20  # one POST /v1/files upload
    upload_ttl_seconds: float = 86_400.0  # how long an upload is kept before the retention sweep removes it
    procedural_enabled: bool = True
    log_format: str = "text"
    log_level: str = "INFO"
    providers: dict[str, ProviderConfig] = field(default_factory=dict)
    # The config file's [models."id"] tables: models added, overridden or left out (catalog.configured).
    models: tuple[ConfiguredModel, ...] = ()

    def __post_init__(self) -> None:
        # Plain strings (a test, a caller building Settings by hand) are wrapped here, once.
        object.__setattr__(self, "admin_key", secret(self.admin_key) or None)
        object.__setattr__(self, "signing_secret", secret(self.signing_secret) or _UNSET)
        object.__setattr__(self, "secrets_key", secret(self.secrets_key) or None)
        object.__setattr__(self, "metrics_token", secret(self.metrics_token) or None)
        object.__setattr__(self, "public_url", public_url(self.public_url))
        parse_networks(self.trusted_proxies)  # refused at start, not on the first forwarded request

    @cached_property
    def base_url(self) -> BaseURL:
        """Where the URLs of a request's answer start: ``public_url``, else the request's own origin."""
        return BaseURL(self.public_url, parse_networks(self.trusted_proxies))

    @cached_property
    def secret_box(self) -> SecretBox:
        """What seals provider keys at rest: keyed by ``secrets_key``, else by the signing secret."""
        return SecretBox(self.secrets_key or self.signing_secret, purpose=b"vidgate/provider-keys/v1")

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def default_balance_micros(self) -> int:
        return round(self.default_balance_usd * 1_000_000)


def _coerce(kind: Any, value: Any) -> Any:
    if isinstance(value, str):
        if kind in (bool, "bool"):
            return value.strip().lower() in _TRUE
        if kind in (int, "int"):
            return int(value)
        if kind in (float, "float"):
            return float(value)
        if kind in (Path, "Path"):
            return Path(value)
    if kind in (Path, "Path") and not isinstance(value, Path):
        return Path(value)
    return value


def _provider_configs(table: dict[str, Any], env: dict[str, str]) -> dict[str, ProviderConfig]:
    merged: dict[str, dict[str, Any]] = {name: dict(v) for name, v in table.items()}
    for key, value in env.items():
        if key.startswith("VIDGATE_PROVIDERS__"):
            parts = key.split("__")
            if len(parts) == 3:
                merged.setdefault(parts[1].lower().replace("_", "-"), {})[parts[2].lower()] = value
    known = {f.name: f.type for f in fields(ProviderConfig)}
    out: dict[str, ProviderConfig] = {}
    for name, raw in merged.items():
        api_key_env = raw.pop("api_key_env", None)
        if api_key_env and not raw.get("api_key"):
            raw["api_key"] = env.get(api_key_env)
        kwargs = {k: _coerce(known[k], v) for k, v in raw.items() if k in known and k != "extra"}
        extra = {k: v for k, v in raw.items() if k not in known}
        extra.update(raw.get("extra", {}))
        out[name] = ProviderConfig(name=name, **{k: v for k, v in kwargs.items() if k != "name"}, extra=extra)
    return out


def load_settings(env: dict[str, str] | None = None, **overrides: Any) -> Settings:
    """Build settings from a TOML file, env and explicit overrides (CLI flags), in that order."""
    env = dict(os.environ if env is None else env)
    values: dict[str, Any] = {}
    providers_table: dict[str, Any] = {}
    models_table: dict[str, Any] = {}
    config_path = overrides.pop("config", None) or env.get("VIDGATE_CONFIG")
    if config_path:
        data = tomllib.loads(Path(config_path).read_text())
        providers_table = data.pop("providers", {})
        models_table = data.pop("models", {})
        values.update(data)
    types = {f.name: f.type for f in fields(Settings)}
    for name in types:
        if name != "providers" and (raw := env.get(f"VIDGATE_{name.upper()}")) is not None:
            values[name] = raw
    values.update({k: v for k, v in overrides.items() if v is not None})
    values = {k: _coerce(types[k], v) for k, v in values.items() if k in types and k not in ("providers", "models")}
    providers = _provider_configs(providers_table, env)
    models = parse_models(models_table, str(config_path)) if models_table else ()
    if models:  # a model's mistake is refused here, at start
        configured_catalog(models, providers, source=str(config_path))
    settings = Settings(**values, providers=providers, models=models)
    return _fill_defaults(settings)


def _fill_defaults(s: Settings) -> Settings:
    """Paths under the data dir and a signing secret generated once and kept there."""
    data_dir = s.data_dir.expanduser().resolve()
    private_dir(data_dir)
    changes: dict[str, Any] = {"data_dir": data_dir}
    if not s.database_url:
        changes["database_url"] = f"sqlite:///{data_dir / 'vidgate.db'}"
    if not s.blob_url:
        changes["blob_url"] = f"file://{data_dir / 'blobs'}"
    if not s.signing_secret:
        changes["signing_secret"] = _stored_secret(data_dir / "signing_secret")
    database = changes.get("database_url", s.database_url)
    if database.startswith("sqlite:///") and ":memory:" not in database:
        # SQLite gives its -wal and -shm files the mode of the database file: create that one private.
        private_file(Path(database.split("sqlite:///", 1)[1].split("?", 1)[0]))
    return replace(s, **changes)


def private_dir(path: Path) -> None:
    """Create ``path`` (and missing parents) readable by this user only; an existing one is left as it is."""
    if not path.is_dir():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        path.mkdir(exist_ok=True, mode=0o700)


def private_file(path: Path) -> None:
    """Create an empty ``path`` with mode 0600 unless it exists."""
    private_dir(path.parent)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass


def _stored_secret(path: Path) -> Secret:
    private_dir(path.parent)
    try:
        return Secret(path.read_text().strip())
    except FileNotFoundError:
        pass
    generated = secrets.token_urlsafe(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return Secret(path.read_text().strip())
    with os.fdopen(fd, "w") as fh:
        fh.write(generated + "\n")
    return Secret(generated)
