"""The Vertex AI (Veo) adapter's credentials against its fake on loopback: a service account whose
tokens are minted, cached and refreshed, application default credentials, and no secret in a message or log.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from fakes.vertex_fake import VertexFake

from providers.harness import poll_until_done as poll_to_end
from providers.vertex_support import MODEL_PATH, config, make_job, vertex_fake
from vidgate.gateway.providers import google_vertex
from vidgate.gateway.providers.base import PollFailed, ProviderConfig, Rejected
from vidgate.gateway.providers.google_vertex import REFRESH_MARGIN_SECONDS, VertexProvider

EMAIL = "veo-runner@proj-test.iam.gserviceaccount.com"


@pytest.fixture
def fake() -> VertexFake:
    return vertex_fake()


@cache
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def key_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()


def service_account(root: str, key: rsa.RSAPrivateKey | None = None) -> dict[str, str]:
    """A real service-account key file's fields, its token endpoint the fake's."""
    return {
        "type": "service_account",
        "project_id": "proj-test",
        "private_key_id": "0123456789abcdef",
        "private_key": key_pem(key or rsa_key()),
        "client_email": EMAIL,
        "client_id": "100000000000000000001",
        "token_uri": f"{root}/token",
    }


def sa_config(root: str, credentials: str, **fields: object) -> ProviderConfig:
    # No fixed token and no project setting: both come from the credentials.
    return config(root, api_key="", extra={"credentials": credentials, "project": None}, **fields)


def bearer_tokens(fake: VertexFake) -> list[str]:
    return [r.headers.get("authorization", "") for r in fake.requests if not r.path.startswith("/storage/")]


async def test_service_account_tokens_are_minted_and_cached(fake: VertexFake, root: str) -> None:
    fake.service_account = (EMAIL, rsa_key().public_key())
    provider = VertexProvider(sa_config(root, json.dumps(service_account(root))))
    try:
        assert provider.project == "proj-test"  # from the key file
        job = make_job()
        accepted = await provider.submit(job)
        await poll_to_end(provider, job, accepted.native_id)
    finally:
        await provider.aclose()
    (claims,) = fake.grants  # one token served the create and every poll
    assert claims["iss"] == EMAIL and claims["aud"] == "https://oauth2.googleapis.com/token"
    assert claims["scope"] == "https://www.googleapis.com/auth/cloud-platform"
    assert claims["exp"] - claims["iat"] == 3600
    (token,) = fake.issued
    assert set(bearer_tokens(fake)) == {f"Bearer {token}"} and len(bearer_tokens(fake)) == 4


class AheadClock:
    """The adapter's wall clock, moved on at will: a token's lifetime passes without waiting it out."""

    def __init__(self) -> None:
        self.ahead = 0.0

    def time(self) -> float:
        return time.time() + self.ahead

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


async def test_token_is_refreshed_before_it_expires(
    fake: VertexFake, root: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = AheadClock()
    monkeypatch.setattr(google_vertex, "time", clock)
    fake.service_account = (EMAIL, rsa_key().public_key())
    fake.token_lifetime = int(REFRESH_MARGIN_SECONDS) + 60  # fresh for a minute, then due
    key_file = tmp_path / "sa.json"
    key_file.write_text(json.dumps(service_account(root)))
    provider = VertexProvider(sa_config(root, str(key_file)))  # a path to the key file
    try:
        job = make_job()
        accepted = await provider.submit(job)
        await provider.poll(job, accepted.native_id)
        assert len(fake.grants) == 1
        clock.ahead = 61.0  # the minute has passed: the token is within the refresh margin
        await provider.poll(job, accepted.native_id)
    finally:
        await provider.aclose()
    assert len(fake.grants) == 2
    first, second = fake.issued
    assert bearer_tokens(fake) == [f"Bearer {first}"] * 2 + [f"Bearer {second}"]


async def test_expired_token_is_refused_by_the_api(fake: VertexFake, root: str) -> None:
    fake.issued["ya29.stale"] = time.time() - 1
    provider = VertexProvider(config(root, api_key="ya29.stale"))
    try:
        with pytest.raises(Rejected) as info:
            await provider.submit(make_job())
    finally:
        await provider.aclose()
    assert info.value.status_code == 401 and not info.value.retryable


async def test_refresh_runs_off_the_event_loop(fake: VertexFake, root: str) -> None:
    fake.service_account = (EMAIL, rsa_key().public_key())
    hold = fake.token_hold = threading.Event()
    provider = VertexProvider(sa_config(root, json.dumps(service_account(root))))
    ticks = 0

    async def tick() -> None:
        # Lets the grant go only after the loop has run a while with it waiting: a refresh that
        # blocked the loop would wait out the provider's timeout instead, and the submit would fail.
        nonlocal ticks
        while True:
            await asyncio.sleep(0.02)
            if fake.token_asked:
                ticks += 1
            if ticks >= 15:
                hold.set()

    ticker = asyncio.create_task(tick())
    try:
        await provider.submit(make_job())
    finally:
        ticker.cancel()
        hold.set()
        await provider.aclose()
    assert ticks >= 15 and len(fake.grants) == 1  # the loop kept running while the token endpoint held


async def test_application_default_credentials(
    fake: VertexFake, root: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.service_account = (EMAIL, rsa_key().public_key())
    key_file = tmp_path / "adc.json"
    key_file.write_text(json.dumps(service_account(root)))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key_file))
    provider = VertexProvider(sa_config(root, "default"))
    try:
        assert provider.project is None  # known once the credentials are loaded, at the first call
        await provider.submit(make_job())
        assert provider.project == "proj-test"
    finally:
        await provider.aclose()
    assert len(fake.grants) == 1


async def test_credentials_never_reach_a_message_or_log(
    fake: VertexFake, root: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    fake.service_account = (EMAIL, rsa_key().public_key())
    info = service_account(root, key=other)  # signed with a key the fake does not know
    cfg = sa_config(root, json.dumps(info))
    provider = VertexProvider(cfg)
    try:
        with pytest.raises(Rejected) as refused:
            await provider.submit(make_job())
        with pytest.raises(PollFailed) as failed:
            await provider.poll(make_job(), f"{MODEL_PATH}/operations/1")
    finally:
        await provider.aclose()
    assert refused.value.retryable and refused.value.code == "provider_misconfigured"
    assert "invalid_grant" in refused.value.message and failed.value.retryable
    broken = VertexProvider(sa_config(root, '{"type": "service_account", "private_key": "-----BEGIN'))
    try:
        with pytest.raises(Rejected) as unreadable:
            await broken.submit(make_job())
    finally:
        await broken.aclose()
    assert "could not be loaded" in unreadable.value.message
    secret_bits = [info["private_key"].splitlines()[1], "BEGIN PRIVATE KEY"]
    shown = [
        repr(cfg),
        str(cfg.extra),
        repr(provider.tokens),
        str(refused.value),
        str(failed.value),
        str(unreadable.value),
        repr(refused.value.__cause__),
        caplog.text,
    ]
    for text in shown:
        assert not any(bit in text for bit in secret_bits), text
    assert fake.operations == {} and fake.grants == []


async def test_a_fixed_token_wins_over_credentials(fake: VertexFake, root: str) -> None:
    """A request's own key (or an operator's minted token) is used as it is, never the credentials."""
    provider = VertexProvider(config(root, extra={"credentials": json.dumps(service_account(root))}))
    try:
        await provider.submit(make_job())
    finally:
        await provider.aclose()
    assert bearer_tokens(fake) == ["Bearer ya29.test"] and fake.grants == []
