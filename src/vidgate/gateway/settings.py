"""Configuration from ``VIDGATE_*`` env vars and an optional TOML file (``VIDGATE_CONFIG``).

Env wins over the file; the file wins over defaults. Provider tables live only in the file
(``[providers.openai]``) plus ``VIDGATE_PROVIDERS__NAME__FIELD`` env overrides.
"""

from __future__ import annotations

import os
import secrets
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from vidgate.gateway.providers.base import ProviderConfig

_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path(".vidgate")
    database_url: str = ""
    blob_url: str = ""
    admin_key: str | None = None
    signing_secret: str = ""
    host: str = "127.0.0.1"
    port: int = 8080
    max_body_bytes: int = 1 << 20
    default_balance_usd: float = 10.0
    byok_fee_per_second_usd: float = 0.0
    allow_private_urls: bool = False
    retention_days: float = 30.0
    download_ttl_default: int = 900
    worker_enabled: bool = True
    worker_concurrency: int = 32
    lease_seconds: float = 15.0
    render_parallel: int = 2
    deadline_override_seconds: int = 0  # when set, every job's deadline (tests and tight deployments)
    rate_limit_per_second: float = 0.0
    rate_limit_burst: int = 0
    max_concurrent_jobs_per_key: int = 0
    max_websockets_per_key: int = 50
    webhook_backoff_base_seconds: float = 5.0
    reference_max_bytes: int = 20 << 20
    procedural_enabled: bool = True
    log_format: str = "text"
    log_level: str = "INFO"
    providers: dict[str, ProviderConfig] = field(default_factory=dict)

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
    config_path = overrides.pop("config", None) or env.get("VIDGATE_CONFIG")
    if config_path:
        data = tomllib.loads(Path(config_path).read_text())
        providers_table = data.pop("providers", {})
        values.update(data)
    types = {f.name: f.type for f in fields(Settings)}
    for name in types:
        if name != "providers" and (raw := env.get(f"VIDGATE_{name.upper()}")) is not None:
            values[name] = raw
    values.update({k: v for k, v in overrides.items() if v is not None})
    values = {k: _coerce(types[k], v) for k, v in values.items() if k in types and k != "providers"}
    settings = Settings(**values, providers=_provider_configs(providers_table, env))
    return _fill_defaults(settings)


def _fill_defaults(s: Settings) -> Settings:
    """Paths under the data dir and a signing secret generated once and kept there."""
    data_dir = s.data_dir.expanduser().resolve()
    changes: dict[str, Any] = {"data_dir": data_dir}
    if not s.database_url:
        changes["database_url"] = f"sqlite:///{data_dir / 'vidgate.db'}"
    if not s.blob_url:
        changes["blob_url"] = f"file://{data_dir / 'blobs'}"
    if not s.signing_secret:
        changes["signing_secret"] = _stored_secret(data_dir / "signing_secret")
    return replace(s, **changes)


def _stored_secret(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    secret = secrets.token_urlsafe(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(secret + "\n")
    return secret
