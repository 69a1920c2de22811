"""Per provider, what the gateway provider tests run: the registry ``test_gateway_providers`` is
parametrised over.

An entry names a request the provider takes first and, where its fake can show it, how it fails,
fails over, is tried again, rides out poll faults, cancels and refuses. A new provider is one entry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fakes.gemini_omni_fake import FAILURE_MESSAGE as OMNI_FAILURE
from fakes.kling_fake import FAILURE_MESSAGE as KLING_FAILURE
from fakes.ltx_fake import MODERATION_MESSAGE as LTX_MODERATION
from fakes.luma_fake import FAILURE_REASON as LUMA_FAILURE
from fakes.openrouter_fake import FAILURE_MESSAGE as OPENROUTER_FAILURE
from fakes.replicate_fake import FAILURE_ERROR as REPLICATE_FAILURE
from fakes.vertex_fake import FAILURE_MESSAGE as VERTEX_FAILURE
from fakes.xai_fake import FAILURE_MESSAGE as XAI_FAILURE
from helpers.media import png_data_url

from providers.wiring import record

IMAGE = png_data_url((10, 200, 30), 64, 64)
FIRST = [{"type": "image_url", "role": "first_frame", "image_url": {"url": IMAGE}}]
LAST = [{"type": "image_url", "role": "last_frame", "image_url": {"url": png_data_url((200, 10, 30), 64, 64)}}]

Record = Any  # a request a fake recorded (see ``wiring.record``)


def only(name: str) -> dict[str, Any]:
    return {"provider": {"only": [name]}}


@dataclass(frozen=True)
class Failure:
    """``fail_next`` for the fake makes the next job fail upstream with ``message`` (any when None)."""

    switch: Any
    message: str | None = None
    code: str | None = None


@dataclass(frozen=True)
class Failover:
    """A ``kind`` fault on create for ``body`` sends the job on to ``second``; ``sent`` checks that create."""

    kind: str
    body: dict[str, Any]
    second: str
    sent: Callable[[Record], None] | None = None


@dataclass(frozen=True)
class Retry:
    """A refusal that may pass, for a model only this provider serves: an HTTP ``status`` or an in-band
    ``(code, message)`` the fake answers with."""

    body: dict[str, Any]
    status: str | None = None
    inband: tuple[Any, str] | None = None


@dataclass(frozen=True)
class Cancel:
    """Cancel while the upstream job runs: ``sent`` finds the upstream's cancel call for a native id and
    ``done`` shows the upstream job stopped; with no ``sent`` the upstream has no cancel, every call
    after the create must be a poll (``polling``) and the upstream job is left ``running``."""

    body: dict[str, Any]
    sent: Callable[[Record, str], bool] | None = None
    done: Callable[[Any, str], bool] | None = None
    polling: Callable[[Record], bool] | None = None
    running: Callable[[Any, str], bool] | None = None


@dataclass(frozen=True)
class Served:
    """One provider in the gateway: a request it takes first, and what its fake is used to show."""

    name: str
    run: dict[str, Any]
    creates: Callable[[Record], bool]  # which of the fake's recorded requests create a job
    fake_settings: dict[str, Any] = field(default_factory=dict)
    sent: Callable[[Record, dict[str, Any]], None] | None = None  # checks on the run's create
    reports_progress: bool = False
    first_frame: Callable[[Record], None] | None = None  # checks on a create that carried FIRST
    failure: Failure | None = None
    failovers: tuple[Failover, ...] = ()
    retries: tuple[Retry, ...] = ()
    poll_faults: tuple[tuple[str, str], ...] = ()  # (op, kind) queued before the run
    poll_inband: tuple[Any, str] | None = None  # an in-band error on a poll, ridden out like the faults
    cancel: Cancel | None = None
    refused: tuple[tuple[dict[str, Any], str], ...] = ()  # (request, the param the 400 names)


def _post(path: str) -> Callable[[Record], bool]:
    return lambda r: record(r, "method") == "POST" and record(r, "path") == path


def _posts_but(*suffixes: str) -> Callable[[Record], bool]:
    return lambda r: record(r, "method") == "POST" and not record(r, "path").endswith(suffixes)


def _replicate_sent(sent: Record, job: dict[str, Any]) -> None:
    # The 540p job went to Replicate's 540p sibling of the model, with the job's deadline.
    assert sent["path"] == "/v1/models/luma/ray-flash-2-540p/predictions" and "cancel-after" in sent["headers"]


def _minimax_sent(sent: Record, job: dict[str, Any]) -> None:
    body = sent["json"]
    assert (body["model"], body["duration"], body["resolution"]) == ("MiniMax-Hailuo-02", 6, "768P")


def _byteplus_sent(sent: Record, job: dict[str, Any]) -> None:
    assert sent["json"]["model"] == "seedance-1-0-pro-250528"
    assert sent["json"]["content"][0]["text"].endswith("--resolution 720p --ratio 16:9 --duration 5 --seed 7")


def _alibaba_sent(sent: Record, job: dict[str, Any]) -> None:
    body = sent["json"]
    assert body["model"] == "wan2.5-t2v-preview" and body["input"]["negative_prompt"] == "blurry"
    assert body["parameters"]["size"] == "1280*720" and body["parameters"]["duration"] == 5
    assert sent["headers"]["x-dashscope-async"] == "enable"


def _alibaba_first_frame(sent: Record) -> None:
    wan = sent["json"]
    assert wan["model"] == "wan2.5-i2v-preview" and wan["input"]["img_url"] == IMAGE
    assert wan["parameters"]["resolution"] == "720P" and "size" not in wan["parameters"]


def _to_fal(model: str) -> Callable[[Record], None]:
    def sent(create: Record) -> None:
        assert create["path"] == f"/{model}" and create["json"]["duration"] == "5"

    return sent


SEEDANCE = {"model": "bytedance/seedance-1.0-pro", "duration": 5, "resolution": "720p", "seed": 7}
WAN = {"model": "alibaba/wan-2.5", "duration": 5, "resolution": "720p", "negative_prompt": "blurry"}
HAILUO = {"model": "minimax/hailuo-02", "duration": 6, "resolution": "768p"}
GROK = {"model": "xai/grok-imagine-video", "duration": 6, "resolution": "720p"}
LTX = {"model": "lightricks/ltx-2.3-fast", "duration": 6}
VEO_OPENROUTER = {"model": "google/veo-3.1", "duration": 8, **only("openrouter")}
OMNI = {"model": "google/gemini-omni-flash", "duration": 6, "resolution": "1080p"}
STANDARD_POLL_FAULTS = (("poll", "503"), ("poll", "malformed"))

SERVED = [
    Served(
        "openai",
        {"model": "openai/sora-2", "duration": 4, "size": "1280x720"},
        _post("/v1/videos"),
        reports_progress=True,
        failure=Failure("failed"),
        poll_faults=(("poll", "503"), ("poll", "503"), ("poll", "malformed"), ("poll", "429")),
    ),
    Served(
        "google",
        {"model": "google/veo-3.1-lite", "duration": 8},
        _posts_but(),
        failure=Failure("moderation", code="moderation_blocked"),
        failovers=(Failover("503", {"model": "google/veo-3.1", "duration": 8}, "fal"),),
    ),
    Served(
        "google-vertex",
        {"model": "google/veo-3.0", "duration": 8},
        _posts_but(":fetchPredictOperation"),
        fake_settings={"polls_to_complete": 2},
        failure=Failure("failed", VERTEX_FAILURE),
        failovers=(Failover("503", {"model": "google/veo-3.0", "duration": 8}, "replicate"),),
        poll_faults=STANDARD_POLL_FAULTS,
        refused=(({"model": "google/veo-3.0", "duration": 8, "input_references": LAST}, "input_references[0].role"),),
    ),
    Served(
        "runway",
        {"model": "runway/gen-4-turbo", "duration": 5, "input_references": FIRST},
        _posts_but(),
        cancel=Cancel(
            {"model": "runway/gen-4.5", "duration": 5},
            sent=lambda r, native: r["method"] == "DELETE" and native in r["path"],
        ),
    ),
    Served("fal", {"model": "kling/kling-2.1-master", "duration": 5}, _posts_but()),
    Served(
        "luma",
        {"model": "luma/ray-2", "duration": 5},
        _posts_but(),
        fake_settings={"polls_to_complete": 2},
        failure=Failure(True, LUMA_FAILURE),
        failovers=(Failover("429", {"model": "luma/ray-2", "duration": 5}, "replicate"),),
        poll_faults=STANDARD_POLL_FAULTS,
        cancel=Cancel(
            {"model": "luma/ray-2", "duration": 5},
            polling=lambda r: r["method"] == "GET",
            running=lambda fake, native: fake.generations[native].state != "completed",
        ),
        refused=(({"model": "luma/ray-2", "duration": 5, "seed": 7}, "seed"),),
    ),
    Served(
        "replicate",
        {"model": "luma/ray-flash-2", "duration": 5, "resolution": "540p", **only("replicate")},
        _posts_but("/cancel"),
        fake_settings={"polls_to_complete": 2},
        sent=_replicate_sent,
        failure=Failure(True, REPLICATE_FAILURE),
        failovers=(
            Failover(
                "502", {"model": "luma/ray-2", "duration": 5, "provider": {"order": ["replicate", "luma"]}}, "luma"
            ),
        ),
        poll_faults=STANDARD_POLL_FAULTS,
        cancel=Cancel(
            {"model": "luma/ray-2", "duration": 5, **only("replicate")},
            sent=lambda r, native: r["path"] == f"/v1/predictions/{native}/cancel",
            done=lambda fake, native: fake.predictions[native].status == "canceled",
        ),
        refused=(
            ({"model": "luma/ray-2", "duration": 5, "negative_prompt": "blur", **only("replicate")}, "negative_prompt"),
        ),
    ),
    Served(
        "kling",
        {"model": "kling/kling-2.5-turbo", "duration": 5},
        _posts_but(),
        fake_settings={"polls_to_complete": 2},
        sent=lambda sent, job: _equal(sent["json"]["external_task_id"], job["id"]),
        failure=Failure(True, KLING_FAILURE),
        failovers=(
            Failover("500", {"model": "kling/kling-2.1", "duration": 5, "input_references": FIRST}, "replicate"),
        ),
        retries=(Retry({"model": "kling/kling-2.6", "duration": 5, "generate_audio": True}, status="429"),),
        poll_faults=STANDARD_POLL_FAULTS,
        refused=(({"model": "kling/kling-2.5-turbo", "duration": 5, "generate_audio": True}, "generate_audio"),),
    ),
    Served(
        "minimax",
        HAILUO,
        _post("/v1/video_generation"),
        sent=_minimax_sent,
        first_frame=lambda sent: _equal(sent["json"]["first_frame_image"], IMAGE),
        failure=Failure(True, "output video contains sensitive content", "moderation_blocked"),
        retries=(
            Retry(HAILUO, status="429"),
            Retry(HAILUO, status="502"),
            Retry(HAILUO, inband=(1002, "rate limit exceeded(RPM)")),
        ),
        poll_faults=(*STANDARD_POLL_FAULTS, ("retrieve", "500")),
        poll_inband=(1002, "rate limit exceeded"),
        cancel=Cancel(
            HAILUO,
            polling=lambda r: r["path"] == "/v1/query/video_generation",
            running=lambda fake, native: fake.tasks[native].status != "Success",
        ),
        refused=(({**HAILUO, "seed": 7}, "seed"), ({**HAILUO, "generate_audio": True}, "generate_audio")),
    ),
    Served(
        "byteplus",
        SEEDANCE,
        _post("/api/v3/contents/generations/tasks"),
        sent=_byteplus_sent,
        first_frame=lambda sent: _equal(
            sent["json"]["content"][1], {"type": "image_url", "image_url": {"url": IMAGE}, "role": "first_frame"}
        ),
        failure=Failure(
            True,
            "The request failed because the output video may contain sensitive information.",
            "moderation_blocked",
        ),
        failovers=tuple(
            Failover(kind, SEEDANCE, "fal", _to_fal("fal-ai/bytedance/seedance/v1/pro/text-to-video"))
            for kind in ("429", "503")
        ),
        poll_faults=STANDARD_POLL_FAULTS,
        cancel=Cancel(
            SEEDANCE,
            sent=lambda r, native: r["method"] == "DELETE" and r["path"].endswith(f"/{native}"),
            done=lambda fake, native: fake.tasks[native].status == "cancelled",
        ),
        refused=(({**SEEDANCE, "negative_prompt": "blurry"}, "negative_prompt"),),
    ),
    Served(
        "alibaba",
        WAN,
        _post("/api/v1/services/aigc/video-generation/video-synthesis"),
        sent=_alibaba_sent,
        first_frame=_alibaba_first_frame,
        failure=Failure(True, "Output data may contain inappropriate content.", "moderation_blocked"),
        failovers=tuple(
            Failover(kind, WAN, "fal", _to_fal("fal-ai/wan-25-preview/text-to-video")) for kind in ("429", "503")
        ),
        poll_faults=STANDARD_POLL_FAULTS,
        poll_inband=("Throttling", "Requests throttling triggered."),
        cancel=Cancel(
            WAN,
            sent=lambda r, native: r["method"] == "POST" and r["path"].endswith(f"/tasks/{native}/cancel"),
            done=lambda fake, native: fake.tasks[native].status == "CANCELED",
        ),
        refused=(
            (
                {
                    **WAN,
                    "input_references": [
                        {"type": "image_url", "role": "last_frame", "image_url": {"url": png_data_url((1, 2, 3))}}
                    ],
                },
                "input_references[0].role",
            ),
        ),
    ),
    Served(
        "xai",
        GROK,
        _post("/v1/videos/generations"),
        sent=lambda sent, job: _equal(
            sent["json"],
            {
                "model": "grok-imagine-video",
                "prompt": "a paper boat on a rainy street",
                "duration": 6,
                "aspect_ratio": "16:9",
                "resolution": "720p",
            },
        ),
        reports_progress=True,
        first_frame=lambda sent: _equal(sent["json"]["image"], {"url": IMAGE}),
        failure=Failure(True, XAI_FAILURE, "internal_error"),
        retries=(Retry(GROK, status="429"),),
        poll_faults=STANDARD_POLL_FAULTS,
        cancel=Cancel(
            GROK,
            polling=lambda r: r["method"] == "GET",
            running=lambda fake, native: fake.videos[native].status == "pending",
        ),
        refused=(({**GROK, "seed": 7}, "seed"), ({**GROK, "negative_prompt": "blurry"}, "negative_prompt")),
    ),
    Served(
        "ltx",
        LTX,
        _posts_but(),
        sent=lambda sent, job: _equal(
            (sent["path"], sent["json"]["model"], sent["json"]["resolution"], sent["json"]["generate_audio"]),
            ("/v2/text-to-video", "ltx-2-3-fast", "1920x1080", True),
        ),
        first_frame=lambda sent: _equal((sent["path"], sent["json"]["image_uri"]), ("/v2/image-to-video", IMAGE)),
        failure=Failure("moderation", LTX_MODERATION, "moderation_blocked"),
        retries=(Retry({"model": "lightricks/ltx-2.3-pro", "duration": 8}, status="503"),),
        poll_faults=STANDARD_POLL_FAULTS,
        cancel=Cancel(
            LTX,
            polling=lambda r: r["method"] == "GET",
            running=lambda fake, native: fake.jobs[native.partition("/")[2]].status != "completed",
        ),
        refused=(({**LTX, "seed": 7}, "seed"),),
    ),
    Served(
        "openrouter",
        VEO_OPENROUTER,
        _post("/api/v1/videos"),
        sent=lambda sent, job: _equal(
            {k: sent["json"].get(k) for k in ("model", "duration", "resolution", "aspect_ratio", "generate_audio")},
            {
                "model": "google/veo-3.1",
                "duration": 8,
                "resolution": "720p",
                "aspect_ratio": "16:9",
                "generate_audio": True,
            },
        ),
        first_frame=lambda sent: _equal(
            sent["json"]["frame_images"],
            [{"type": "image_url", "image_url": {"url": IMAGE}, "frame_type": "first_frame"}],
        ),
        failure=Failure(True, OPENROUTER_FAILURE),
        failovers=(
            Failover(
                "503",
                {"model": "google/veo-3.1", "duration": 8, "provider": {"order": ["openrouter", "google"]}},
                "google",
            ),
        ),
        retries=(Retry(VEO_OPENROUTER, status="429"),),
        poll_faults=STANDARD_POLL_FAULTS,
        cancel=Cancel(
            VEO_OPENROUTER,
            polling=lambda r: r["method"] == "GET",
            running=lambda fake, native: fake.jobs[native].status != "completed",
        ),
    ),
    Served(
        "gemini-omni",
        OMNI,
        _post("/v1beta/interactions"),
        sent=lambda sent, job: _equal(
            (sent["json"]["model"], sent["json"]["background"], sent["json"]["response_format"]),
            (
                "gemini-omni-1.1-flash",
                True,
                {"type": "video", "delivery": "uri", "aspect_ratio": "16:9", "resolution": "1080p", "duration": "6s"},
            ),
        ),
        first_frame=lambda sent: _equal(
            (sent["json"]["input"][0]["data"], sent["json"]["generation_config"]["video_config"]["task"]),
            (IMAGE.partition(",")[2], "image_to_video"),
        ),
        failure=Failure(True, OMNI_FAILURE, "internal"),
        retries=(Retry(OMNI, status="429"),),
        poll_faults=STANDARD_POLL_FAULTS,
        cancel=Cancel(
            OMNI,
            sent=lambda r, native: r["path"] == f"/v1beta/interactions/{native}/cancel",
            done=lambda fake, native: fake.interactions[native].status == "cancelled",
        ),
        refused=(({**OMNI, "seed": 7}, "seed"), ({**OMNI, "negative_prompt": "blurry"}, "negative_prompt")),
    ),
]
BY_NAME = {s.name: s for s in SERVED}


def _equal(got: Any, want: Any) -> None:
    assert got == want, (got, want)
