"""The configured providers of one process, and their health (a circuit breaker each, shared through
the database by every process: ``providers/health_store.py``)."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import importlib

from vidgate.gateway.ids import now_ms
from vidgate.gateway.providers.base import LocalProvider, ProviderConfig, ProviderError, RemoteProvider
from vidgate.gateway.providers.health import HealthRecord, counts_against, error_class
from vidgate.gateway.providers.health_store import SharedHealth
from vidgate.gateway.secret import Secret
from vidgate.gateway.storage.db import Database

ADAPTERS: dict[str, str] = {
    "vidgate": "vidgate.gateway.providers.procedural:ProceduralProvider",
    "openai": "vidgate.gateway.providers.openai:OpenAIProvider",
    "google": "vidgate.gateway.providers.google:GoogleProvider",
    "runway": "vidgate.gateway.providers.runway:RunwayProvider",
    "fal": "vidgate.gateway.providers.fal:FalProvider",
    "google-vertex": "vidgate.gateway.providers.google_vertex:VertexProvider",
    "luma": "vidgate.gateway.providers.luma:LumaProvider",
    "replicate": "vidgate.gateway.providers.replicate:ReplicateProvider",
    "kling": "vidgate.gateway.providers.kling:KlingProvider",
    "minimax": "vidgate.gateway.providers.minimax:MiniMaxProvider",
    "byteplus": "vidgate.gateway.providers.byteplus:BytePlusProvider",
    "alibaba": "vidgate.gateway.providers.alibaba:AlibabaProvider",
    "xai": "vidgate.gateway.providers.xai:XaiProvider",
    "ltx": "vidgate.gateway.providers.ltx:LtxProvider",
    "openrouter": "vidgate.gateway.providers.openrouter:OpenRouterProvider",
    "gemini-omni": "vidgate.gateway.providers.gemini_omni:GeminiOmniProvider",
}

BYOK_ADAPTERS = 64  # adapters kept open for owners' own keys, least recently used closed first


def load_adapter(name: str, config: ProviderConfig) -> RemoteProvider | LocalProvider:
    module, _, cls = ADAPTERS[name].partition(":")
    return getattr(importlib.import_module(module), cls)(config)


class Providers:
    def __init__(
        self, configs: dict[str, ProviderConfig], *, procedural: bool = True, render_parallel: int = 2
    ) -> None:
        self.configs = dict(configs)
        if procedural and "vidgate" not in self.configs:
            # The built-in provider's concurrency is its render threads: CPU-bound, so about one per core.
            self.configs["vidgate"] = ProviderConfig(name="vidgate", max_concurrency=render_parallel)
        self._instances: dict[str, RemoteProvider | LocalProvider] = {}
        self._byok_instances: dict[str, RemoteProvider | LocalProvider] = {}
        self._closing: set[asyncio.Future[None]] = set()
        self.shared_health = SharedHealth(self._circuit_policy)

    def is_available(self, name: str) -> bool:
        config = self.configs.get(name)
        if config is None or not config.enabled or name not in ADAPTERS:
            return False
        return name == "vidgate" or bool(config.api_key) or bool(config.extra.get("credentials"))

    @property
    def available(self) -> frozenset[str]:
        return frozenset(n for n in self.configs if self.is_available(n))

    def get(self, name: str, api_key: Secret | None = None) -> RemoteProvider | LocalProvider:
        """The shared adapter, or with ``api_key`` one that speaks with the owner's own credentials."""
        if api_key is not None:
            return self._byok(name, api_key)
        if name not in self._instances:
            self._instances[name] = load_adapter(name, self.configs[name])
        return self._instances[name]

    def _byok(self, name: str, api_key: Secret) -> RemoteProvider | LocalProvider:
        cache_key = f"{name}:{hashlib.sha256(api_key.reveal().encode()).hexdigest()}"
        adapter = self._byok_instances.pop(cache_key, None)
        if adapter is None:
            base = self.configs.get(name) or ProviderConfig(name=name)
            adapter = load_adapter(name, dataclasses.replace(base, api_key=api_key, enabled=True))
        self._byok_instances[cache_key] = adapter  # most recently used last
        while len(self._byok_instances) > BYOK_ADAPTERS:
            old = self._byok_instances.pop(next(iter(self._byok_instances)))
            self._closing.add(asyncio.ensure_future(old.aclose()))
        return adapter

    def byok_capable(self, name: str) -> bool:
        """Whether a request may bring its own key for ``name`` (a remote adapter that exists)."""
        return name in ADAPTERS and name != "vidgate" and self.configs.get(name, ProviderConfig(name=name)).enabled

    def _circuit_policy(self, name: str) -> tuple[int, int]:
        config = self.configs.get(name) or ProviderConfig(name=name)
        return max(1, config.circuit_failures), int(config.circuit_cooldown_seconds * 1000)

    def share_health(self, db: Database) -> None:
        """Keep health in ``db``'s ``provider_health`` table, which every process reads."""
        self.shared_health.attach(db)

    async def refresh_health(self) -> None:
        """Read the shared health again if this process's copy is more than a moment old."""
        await self.shared_health.refresh()

    def health(self, name: str) -> HealthRecord:
        """``name``'s health as this process knows it: the shared record and its own calls since."""
        return self.shared_health.view(name)

    def is_healthy(self, name: str) -> bool:
        return not self.shared_health.view(name).is_open(now_ms())

    def unhealthy(self) -> frozenset[str]:
        """The providers whose circuit is open (here or in any process that shares its health)."""
        return self.shared_health.open_circuits()

    def record(self, name: str, ok: bool, error: ProviderError | None = None) -> None:
        """Note one upstream call's outcome; a refusal of the request itself counts neither way."""
        if ok or counts_against(error):
            self.shared_health.saw(name, ok, None if ok else error_class(error))

    async def aclose(self) -> None:
        for provider in (*self._instances.values(), *self._byok_instances.values()):
            await provider.aclose()
        self._instances.clear()
        self._byok_instances.clear()
