"""How each adapter reaches its fake upstream: the one registry the provider tests build on.

``WIRINGS`` names, per provider, its adapter, its fake, the key the fake checks, where the API sits
under the fake's address and any adapter settings. Adapter tests make their ``ProviderConfig``
from it; ``Fleet`` serves several fakes at once and writes the gateway settings that point at them.
``ADAPTER_CASES`` names, per provider, how its upstream answers what every adapter meets: the
registry ``test_adapter_faults`` runs over.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fakes.alibaba_fake import AlibabaFake
from fakes.byteplus_fake import BytePlusFake
from fakes.fal_fake import FalFake
from fakes.gemini_omni_fake import FAILURE_MESSAGE as OMNI_FAILURE
from fakes.gemini_omni_fake import REFUSAL_TEXT as OMNI_REFUSAL
from fakes.gemini_omni_fake import GeminiOmniFake
from fakes.google_fake import GoogleFake
from fakes.kling_fake import KlingFake
from fakes.ltx_fake import FAILURE_MESSAGE as LTX_FAILURE
from fakes.ltx_fake import MODERATION_MESSAGE as LTX_MODERATION
from fakes.ltx_fake import LtxFake
from fakes.luma_fake import FAILURE_REASON as LUMA_FAILURE
from fakes.luma_fake import LumaFake
from fakes.minimax_fake import MiniMaxFake
from fakes.openai_fake import OpenAIFake
from fakes.openrouter_fake import FAILURE_MESSAGE as OPENROUTER_FAILURE
from fakes.openrouter_fake import OpenRouterFake
from fakes.replicate_fake import ReplicateFake
from fakes.runway_fake import RunwayFake
from fakes.server import FakeUpstream
from fakes.vertex_fake import VertexFake
from fakes.xai_fake import FAILURE_MESSAGE as XAI_FAILURE
from fakes.xai_fake import XaiFake

from vidgate.gateway.providers.alibaba import AlibabaProvider
from vidgate.gateway.providers.base import ProviderConfig
from vidgate.gateway.providers.byteplus import BytePlusProvider
from vidgate.gateway.providers.fal import FalProvider
from vidgate.gateway.providers.gemini_omni import GeminiOmniProvider
from vidgate.gateway.providers.google import GoogleProvider
from vidgate.gateway.providers.google_vertex import VertexProvider
from vidgate.gateway.providers.kling import KlingProvider
from vidgate.gateway.providers.ltx import LtxProvider
from vidgate.gateway.providers.luma import LumaProvider
from vidgate.gateway.providers.minimax import MiniMaxProvider
from vidgate.gateway.providers.openai import OpenAIProvider
from vidgate.gateway.providers.openrouter import OpenRouterProvider
from vidgate.gateway.providers.replicate import ReplicateProvider
from vidgate.gateway.providers.runway import RunwayProvider
from vidgate.gateway.providers.xai import XaiProvider

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
        Wiring("xai", XaiProvider, XaiFake, "xai-test", "/v1"),
        Wiring("ltx", LtxProvider, LtxFake, "ltx-test"),
        Wiring("openrouter", OpenRouterProvider, OpenRouterFake, "sk-or-test", "/api/v1"),
        Wiring("gemini-omni", GeminiOmniProvider, GeminiOmniFake, "g-test", "/v1beta"),
    )
}


@dataclass(frozen=True)
class Ending:
    """Setting the fake's ``fail_next`` to ``switch`` ends the next job ``status``, with an error of
    ``code`` and ``message`` (no error when both are None)."""

    switch: Any
    code: str | None
    message: str | None
    status: str = "failed"


@dataclass(frozen=True)
class AdapterCase:
    """How one upstream answers what every adapter meets, for the tests ``test_adapter_faults`` runs
    over ``ADAPTER_CASES``: a job it takes, where its fake keeps jobs, an id it has never issued, its
    status for an expired output link, its refusal of a wrong key and the ends its fake can force."""

    job: Mapping[str, Any]
    store: str  # the fake's attribute holding its jobs, keyed by the upstream id
    missing_id: str
    expired_status: int
    wrong_key: tuple[int, str]
    endings: tuple[Ending, ...] = ()


ADAPTER_CASES: dict[str, AdapterCase] = {
    "gemini-omni": AdapterCase(
        job={
            "model": "google/gemini-omni-flash",
            "provider_model": "gemini-omni-1.1-flash",
            "prompt": "a marble rolling down a wooden chain-reaction track",
            "duration": 8,
            "width": 1280,
            "height": 720,
            "resolution": "720p",
            "aspect_ratio": "16:9",
            "audio": True,
        },
        store="interactions",
        missing_id="Z2VtaW5pLW9tbmktbWlzc2luZy1pbnRlcmFjdGlvbg",
        expired_status=403,
        wrong_key=(400, "API key not valid. Please pass a valid API key."),
        endings=(
            Ending(True, "internal", OMNI_FAILURE),
            Ending("moderation", "no_video", OMNI_REFUSAL),
        ),
    ),
    "xai": AdapterCase(
        job={
            "model": "xai/grok-imagine-video",
            "provider_model": "grok-imagine-video",
            "prompt": "a lantern drifting over a dark lake",
            "duration": 6,
            "width": 1280,
            "height": 720,
            "resolution": "720p",
            "aspect_ratio": "16:9",
            "audio": True,
        },
        store="videos",
        missing_id="00000000-0000-0000-0000-000000000000",
        expired_status=403,
        wrong_key=(400, "Incorrect API key provided: ***. You can obtain an API key from https://console.x.ai."),
        endings=(
            Ending(True, "internal_error", XAI_FAILURE),
            Ending("moderation", "moderation_blocked", "xai withheld the video under its content policy"),
            Ending("expired", "expired", "xai let the request expire"),
        ),
    ),
    "ltx": AdapterCase(
        job={
            "model": "lightricks/ltx-2.3-fast",
            "provider_model": "ltx-2-3-fast",
            "prompt": "steam rising from a cup on a windowsill",
            "duration": 8,
            "width": 1920,
            "height": 1080,
            "resolution": "1080p",
            "aspect_ratio": "16:9",
            "audio": True,
        },
        store="jobs",
        missing_id="text-to-video/00000000-0000-0000-0000-000000000000",
        expired_status=400,
        wrong_key=(401, "Invalid API key"),
        endings=(
            Ending(True, "api_error", LTX_FAILURE),
            Ending("moderation", "moderation_blocked", LTX_MODERATION),
        ),
    ),
    "openrouter": AdapterCase(
        job={
            "model": "google/veo-3.1",
            "provider_model": "google/veo-3.1",
            "prompt": "a hummingbird hovering at a red flower",
            "duration": 8,
            "width": 1280,
            "height": 720,
            "resolution": "720p",
            "aspect_ratio": "16:9",
            "audio": True,
        },
        store="jobs",
        missing_id="job-missing",
        expired_status=404,
        wrong_key=(401, "No auth credentials found"),
        endings=(
            Ending(True, "generation_failed", OPENROUTER_FAILURE),
            Ending("expired", "expired", "openrouter job expired"),
            Ending("cancelled", None, None, status="cancelled"),
        ),
    ),
    "luma": AdapterCase(
        job={
            "model": "luma/ray-2",
            "provider_model": "ray-2",
            "prompt": "a koi pond in morning mist",
            "duration": 5,
            "width": 1280,
            "height": 720,
            "resolution": "720p",
            "aspect_ratio": "16:9",
        },
        store="generations",
        missing_id="00000000-0000-0000-0000-000000000000",
        expired_status=403,
        wrong_key=(401, "Invalid API key is provided"),
        endings=(Ending(True, "generation_failed", LUMA_FAILURE),),
    ),
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
