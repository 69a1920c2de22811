"""How each adapter reaches its fake upstream: the one registry the provider tests build on.

``WIRINGS`` names, per provider, its adapter, its fake, the key the fake checks, where the API sits
under the fake's address and any adapter settings. Adapter tests make their ``ProviderConfig``
from it; ``Fleet`` serves several fakes at once and writes the gateway settings that point at them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fakes.alibaba_fake import AlibabaFake
from fakes.byteplus_fake import BytePlusFake
from fakes.fal_fake import FalFake
from fakes.google_fake import GoogleFake
from fakes.kling_fake import KlingFake
from fakes.luma_fake import LumaFake
from fakes.minimax_fake import MiniMaxFake
from fakes.openai_fake import OpenAIFake
from fakes.replicate_fake import ReplicateFake
from fakes.runway_fake import RunwayFake
from fakes.server import FakeUpstream
from fakes.vertex_fake import VertexFake

from vidgate.gateway.providers.alibaba import AlibabaProvider
from vidgate.gateway.providers.base import ProviderConfig
from vidgate.gateway.providers.byteplus import BytePlusProvider
from vidgate.gateway.providers.fal import FalProvider
from vidgate.gateway.providers.google import GoogleProvider
from vidgate.gateway.providers.google_vertex import VertexProvider
from vidgate.gateway.providers.kling import KlingProvider
from vidgate.gateway.providers.luma import LumaProvider
from vidgate.gateway.providers.minimax import MiniMaxProvider
from vidgate.gateway.providers.openai import OpenAIProvider
from vidgate.gateway.providers.replicate import ReplicateProvider
from vidgate.gateway.providers.runway import RunwayProvider

# Gateway settings every fleet provider shares: quick polls, and a timeout a hanging fake outlasts.
GATEWAY_SETTINGS = {"poll_interval_seconds": 0.2, "timeout_seconds": 2.0}


@dataclass(frozen=True)
class Wiring:
    """One adapter and its fake. In ``extra``, ``{root}`` stands for the fake's address."""

    name: str
    adapter: type[Any]
    fake: Callable[..., Any]
    key: str
    suffix: str = ""  # the API's path under the fake's address
    extra: Mapping[str, str] = field(default_factory=dict)

    def config(
        self, root: str, *, api_key: str | None = None, extra: Mapping[str, Any] = {}, **fields: Any
    ) -> ProviderConfig:
        """The adapter's settings for a fake at ``root``; an ``extra`` value of None drops that setting."""
        settings = {k: v.format(root=root) for k, v in self.extra.items()}
        settings = {k: v for k, v in {**settings, **extra}.items() if v is not None}
        key = self.key if api_key is None else api_key
        return ProviderConfig(name=self.name, api_key=key, base_url=root + self.suffix, extra=settings, **fields)

    def toml(self, root: str) -> str:
        """The ``[providers.NAME]`` table of a gateway whose upstream is the fake at ``root``."""
        values = {
            "api_key": self.key,
            "base_url": root + self.suffix,
            **{k: v.format(root=root) for k, v in self.extra.items()},
        }
        lines = [f"[providers.{self.name}]", *(f'{k} = "{v}"' for k, v in values.items())]
        lines += [f"{k} = {v}" for k, v in GATEWAY_SETTINGS.items()]
        return "\n".join(lines) + "\n\n"


WIRINGS: dict[str, Wiring] = {
    w.name: w
    for w in (
        Wiring("openai", OpenAIProvider, OpenAIFake, "sk-test", "/v1"),
        Wiring("google", GoogleProvider, GoogleFake, "g-test", "/v1beta"),
        Wiring(
            "google-vertex",
            VertexProvider,
            VertexFake,
            "ya29.test",
            "/v1",
            {"project": "proj-test", "location": "us-central1", "storage_base_url": "{root}"},
        ),
        Wiring("runway", RunwayProvider, RunwayFake, "key_test"),
        Wiring("fal", FalProvider, FalFake, "fal_test"),
        Wiring("luma", LumaProvider, LumaFake, "luma-test", "/dream-machine/v1"),
        Wiring("replicate", ReplicateProvider, ReplicateFake, "r8_test", "/v1"),
        Wiring("kling", KlingProvider, KlingFake, "ak-test", extra={"secret_key": "sk-test"}),
        Wiring("minimax", MiniMaxProvider, MiniMaxFake, "mm-test"),
        Wiring("byteplus", BytePlusProvider, BytePlusFake, "ark-test", "/api/v3"),
        Wiring("alibaba", AlibabaProvider, AlibabaFake, "sk-ds-test", "/api/v1"),
    )
}


def record(r: Any, key: str) -> Any:
    """A field of a request a fake recorded: a dict for most fakes, a named tuple (``body``) for Google's
    and OpenAI's."""
    if isinstance(r, dict):
        return r[key]
    return getattr(r, "body" if key == "json" else key)


class Fleet:
    """Fakes of the named providers, each served on its own loopback port, for one gateway."""

    def __init__(self, names: Iterable[str], fake_settings: Mapping[str, Mapping[str, Any]] = {}) -> None:
        self.fakes: dict[str, Any] = {n: WIRINGS[n].fake(**fake_settings.get(n, {})) for n in names}
        self.servers = {n: FakeUpstream(fake.app).start() for n, fake in self.fakes.items()}

    def __getitem__(self, name: str) -> Any:
        return self.fakes[name]

    def config(self, path: Path) -> Path:
        """The gateway's settings file naming every fake of the fleet."""
        path.write_text("".join(WIRINGS[n].toml(s.base_url) for n, s in self.servers.items()))
        return path

    def reset(self) -> None:
        for fake in self.fakes.values():
            fake.reset()

    def stop(self) -> None:
        for server in self.servers.values():
            server.stop()
