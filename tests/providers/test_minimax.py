"""MiniMaxProvider against the fake MiniMax Hailuo API on loopback."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from functools import partial

import av
import pytest
from fakes.minimax_fake import MiniMaxFake
from fakes.server import free_port, small_mp4

from providers.harness import FIRST, LAST, PNG, job_maker, poll_until_done, read_all, refused_before_a_call
from providers.wiring import WIRINGS
from vidgate.gateway.providers.base import (
    PollFailed,
    ReferenceImage,
    Rejected,
    RemoteProvider,
    UnknownOutcome,
)
from vidgate.gateway.providers.minimax import MiniMaxProvider

WIRE = WIRINGS["minimax"]
config = partial(WIRE.config, timeout_seconds=2.0)
make_job = job_maker(
    job_id="vid_0001",
    model="minimax/hailuo-02",
    provider_model="MiniMax-Hailuo-02",
    prompt="a fox running through snow",
    duration=6,
    width=1366,
    height=768,
    resolution="768p",
    aspect_ratio="16:9",
)


@pytest.fixture
def fake() -> MiniMaxFake:
    return MiniMaxFake(polls_to_complete=4)


@pytest.fixture
async def provider(root: str) -> AsyncIterator[MiniMaxProvider]:
    p = MiniMaxProvider(config(root))
    yield p
    await p.aclose()


def creates(fake: MiniMaxFake) -> list[dict]:
    return [r for r in fake.requests if r["method"] == "POST"]


async def test_text_to_video_runs_to_completion(provider: MiniMaxProvider, fake: MiniMaxFake) -> None:
    assert isinstance(provider, RemoteProvider) and provider.name == "minimax" and not provider.cancellable
    job = make_job(enhance_prompt=False)
    accepted = await provider.submit(job)
    assert accepted.native_id in fake.tasks

    (sent,) = creates(fake)
    assert sent["path"] == "/v1/video_generation"
    assert sent["json"] == {
        "model": "MiniMax-Hailuo-02",
        "prompt": "a fox running through snow",
        "duration": 6,
        "resolution": "768P",
        "prompt_optimizer": False,
    }
    assert sent["headers"]["authorization"] == "Bearer mm-test"
    assert "GroupId" not in sent["query"]

    seen = await poll_until_done(provider, job, accepted.native_id)
    assert [s.status for s in seen] == ["queued", "queued", "processing", "completed"]
    assert [t.status for t in fake.tasks.values()] == ["Success"]
    # The file call happens inside poll, so the completed answer already carries a real URL.
    retrieve = [r for r in fake.requests if r["path"] == "/v1/files/retrieve"]
    assert len(retrieve) == 1 and retrieve[0]["query"]["file_id"] == fake.tasks[accepted.native_id].file_id
    (out,) = seen[-1].outputs
    assert "/cdn/" in out.url and out.headers == {}

    data = await read_all(provider, out)
    assert data == small_mp4()
    with av.open(io.BytesIO(data)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 24
    download = fake.requests[-1]
    assert download["path"].startswith("/cdn/")
    assert "authorization" not in download["headers"]  # the key never goes to the CDN


async def test_first_and_last_frames_and_passthrough(provider: MiniMaxProvider, fake: MiniMaxFake) -> None:
    job = make_job(
        width=1920,
        height=1080,
        resolution="1080p",
        references=(FIRST, LAST),
        provider_params={"duration": 10, "resolution": "512P", "fast_pretreatment": True},
    )
    await provider.submit(job)
    body = creates(fake)[0]["json"]
    assert body["first_frame_image"] == FIRST.data_url() and body["last_frame_image"] == LAST.data_url()
    # Priced fields are ours; other fields pass through.
    assert body["duration"] == 6 and body["resolution"] == "1080P" and body["fast_pretreatment"] is True


async def test_group_id_is_sent_when_configured(root: str, fake: MiniMaxFake) -> None:
    provider = MiniMaxProvider(config(root, extra={"group_id": "1900000000"}))
    try:
        accepted = await provider.submit(make_job())
        await provider.poll(make_job(), accepted.native_id)
    finally:
        await provider.aclose()
    assert all(r["query"].get("GroupId") == "1900000000" for r in fake.requests)


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"seed": 7}, "seed"),
        ({"audio": True}, "audio"),
        ({"negative_prompt": "blurry"}, "negative prompt"),
        ({"sample_count": 2}, "one video"),
        ({"duration": 10, "width": 1920, "height": 1080, "resolution": "1080p"}, "6 s videos at 1080P"),
        ({"resolution": "720p", "width": 1280, "height": 720}, "not 720P"),
        ({"resolution": "512p", "width": 910, "height": 512}, "not 512P"),
        ({"provider_model": "MiniMax-Hailuo-2.3", "references": (FIRST, LAST)}, "last_frame"),
        ({"provider_model": "MiniMax-Hailuo-2.3-Fast"}, "needs a first_frame"),
        ({"references": (LAST,)}, "first_frame image to go with"),
        ({"resolution": "512p", "width": 910, "height": 512, "references": (FIRST, LAST)}, "768P or 1080P, not 512P"),
        ({"references": (ReferenceImage("reference", "https://x.test/r.png", PNG, "image/png"),)}, "reference"),
    ],
)
async def test_inputs_the_model_cannot_take_are_refused_before_any_call(
    provider: MiniMaxProvider, fake: MiniMaxFake, overrides: dict, needle: str
) -> None:
    await refused_before_a_call(provider, fake, make_job(**overrides), needle)


async def test_512p_is_allowed_with_a_first_frame(provider: MiniMaxProvider, fake: MiniMaxFake) -> None:
    await provider.submit(make_job(resolution="512p", width=910, height=512, duration=10, references=(FIRST,)))
    assert creates(fake)[0]["json"]["resolution"] == "512P"


async def test_failed_task_keeps_the_reason(provider: MiniMaxProvider, fake: MiniMaxFake) -> None:
    fake.fail_next = True
    job = make_job()
    accepted = await provider.submit(job)
    final = (await poll_until_done(provider, job, accepted.native_id))[-1]
    assert final.status == "failed" and final.outputs == ()
    assert final.error is not None
    assert final.error.code == "moderation_blocked"
    assert final.error.message == "output video contains sensitive content"
    assert not [r for r in fake.requests if r["path"] == "/v1/files/retrieve"]


@pytest.mark.parametrize("kind", ["429", "500", "503"])
async def test_create_http_faults_are_retryable(provider: MiniMaxProvider, fake: MiniMaxFake, kind: str) -> None:
    fake.faults.add("create", kind)
    with pytest.raises(Rejected) as info:
        await provider.submit(make_job())
    assert info.value.retryable and info.value.status_code == int(kind)
    assert fake.tasks == {}
    assert (await provider.submit(make_job())).native_id in fake.tasks  # the next try goes through


async def test_rate_limit_inside_http_200_is_retryable(provider: MiniMaxProvider, fake: MiniMaxFake) -> None:
    fake.inband("create", 1002, "rate limit exceeded(RPM)")
    with pytest.raises(Rejected) as info:
        await provider.submit(make_job())
    assert info.value.retryable and info.value.code == "upstream_rate_limited"
    assert info.value.message == "rate limit exceeded(RPM)" and info.value.status_code is None
    assert fake.tasks == {}


@pytest.mark.parametrize(
    ("code", "msg"),
    [(1008, "insufficient balance"), (1026, "input new_sensitive"), (2013, "invalid params, bad")],
)
async def test_other_base_resp_errors_are_not_retryable(
    provider: MiniMaxProvider, fake: MiniMaxFake, code: int, msg: str
) -> None:
    fake.inband("create", code, msg)
    with pytest.raises(Rejected) as info:
        await provider.submit(make_job())
    assert not info.value.retryable and info.value.message == msg and info.value.code == f"minimax_{code}"


async def test_fake_validation_answers_2013_in_http_200(provider: MiniMaxProvider, fake: MiniMaxFake) -> None:
    with pytest.raises(Rejected) as info:
        await provider.submit(make_job(provider_params={"watermark_please": True}))
    assert not info.value.retryable and "unknown field(s): watermark_please" in info.value.message


async def test_create_timeout_is_an_unknown_outcome(root: str, fake: MiniMaxFake) -> None:
    fake.faults.hang_seconds = 10.0  # far past the 0.3 s timeout, however slow the machine
    fake.faults.add("create", "timeout")
    provider = MiniMaxProvider(config(root, timeout_seconds=0.3))
    try:
        with pytest.raises(UnknownOutcome) as info:
            await provider.submit(make_job())
    finally:
        await provider.aclose()
    assert info.value.retryable and info.value.code == "upstream_timeout"
    assert not isinstance(info.value, Rejected)  # sent: the job may exist, no failover


async def test_connection_refused_is_retryable() -> None:
    provider = MiniMaxProvider(config(f"http://127.0.0.1:{free_port()}"))
    try:
        with pytest.raises(Rejected) as info:
            await provider.submit(make_job())
    finally:
        await provider.aclose()
    assert info.value.retryable


async def test_wrong_key_is_not_retryable(root: str, fake: MiniMaxFake) -> None:
    provider = MiniMaxProvider(config(root, api_key="mm-wrong"))
    try:
        with pytest.raises(Rejected) as info:
            await provider.submit(make_job())
    finally:
        await provider.aclose()
    assert not info.value.retryable and info.value.code == "minimax_1004"
    assert "login fail" in info.value.message
    assert fake.tasks == {}


async def test_poll_faults_are_retryable_and_polling_recovers(provider: MiniMaxProvider, fake: MiniMaxFake) -> None:
    job = make_job()
    accepted = await provider.submit(job)
    fake.faults.add("poll", "503")
    fake.faults.add("poll", "malformed")
    fake.inband("poll", 1002, "rate limit exceeded")
    for expected_status in (503, 200, None):
        with pytest.raises(PollFailed) as info:
            await provider.poll(job, accepted.native_id)
        assert info.value.retryable and info.value.status_code == expected_status
    # The file call fails once after the task succeeded; the next poll asks for it again.
    fake.faults.add("retrieve", "500")
    for _ in range(fake.polls_to_complete - 1):
        await provider.poll(job, accepted.native_id)
    with pytest.raises(PollFailed) as info:
        await provider.poll(job, accepted.native_id)
    assert info.value.retryable and info.value.status_code == 500
    final = await provider.poll(job, accepted.native_id)
    assert final.status == "completed" and final.outputs
    assert await read_all(provider, final.outputs[0]) == small_mp4()
    assert len(creates(fake)) == 1


async def test_cancel_is_not_supported(provider: MiniMaxProvider, fake: MiniMaxFake) -> None:
    accepted = await provider.submit(make_job())
    assert provider.cancellable is False
    assert await provider.cancel(accepted.native_id) is False
    assert len(fake.requests) == 1  # no call was made


async def test_expired_output_url_fails_the_download(provider: MiniMaxProvider, fake: MiniMaxFake) -> None:
    job = make_job()
    accepted = await provider.submit(job)
    final = (await poll_until_done(provider, job, accepted.native_id))[-1]
    fake.expire_outputs = True
    with pytest.raises(PollFailed) as info:
        await read_all(provider, final.outputs[0])
    assert info.value.status_code == 403 and not info.value.retryable
