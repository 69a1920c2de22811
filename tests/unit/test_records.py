"""Job records: rows decoded once into typed fields, specs stored as they always were, secrets kept sealed."""

from __future__ import annotations

from typing import Any

import orjson

from vidgate.gateway.jobs.records import (
    VIEW_COLUMNS,
    Attempt,
    JobRecord,
    JobView,
    StoredOutput,
    column_json,
    job_error,
)
from vidgate.gateway.jobs.spec import Extras, Reference, Routing, VideoSpec, decode_spec, encode_spec
from vidgate.gateway.jobs.views import render
from vidgate.gateway.providers.base import JobSpec, ReferenceImage
from vidgate.gateway.secret import Secret
from vidgate.types import ProviderAttempt

WEBHOOK_SECRET = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo="
# A spec as the previous release stored it: extras and routing as dicts, references as {role, url}.
OLD_SPEC = (
    '{"model":"vidgate/procedural","prompt":"a fox","duration":4,"width":1280,"height":720,'
    '"resolution":"720p","aspect_ratio":"16:9","audio":false,"seed":7,"sample_count":1,"negative_prompt":null,'
    '"references":[{"role":"first_frame","url":"https://a.test/f.png"}],"provider_params":{"style":{"x":[1,2.5]}},'
    '"extras":{"enhance_prompt":true,"resize_mode":"crop"},"output_access":"bytes",'
    f'"webhook":{{"url":"https://h.test/in","secret":"{WEBHOOK_SECRET}","events":["video.completed"]}},'
    '"routing":{"include_alpha":false,"allow_fallbacks":true,"only":["vidgate"]}}'
)
ATTEMPTS = [
    {"provider": "openai", "outcome": "unknown", "at": 1700000000, "idempotency_key": "vid_1", "message": "m",
     "reason": "m", "lookups": 2},
    {"provider": "vidgate", "outcome": "accepted", "at": 1700000001, "store_failures": 1,
     "store_since": 1_700_000_000_000},
]  # fmt: skip
OUTPUTS = [
    {"index": 0, "asset_id": "ast_1", "key": "videos/vid_1/0-ab.mp4", "mime_type": "video/mp4", "bytes": 10,
     "sha256": "ab" * 32, "width": 1280, "height": 720, "duration_seconds": 4.0, "frames": 96, "has_audio": False},
]  # fmt: skip


def job_row(**overrides: Any) -> dict[str, Any]:
    """Every column, each with a value of its own."""
    row = {
        "id": "vid_1",
        "owner_id": "key_1",
        "model": "vidgate/procedural",
        "status": "completed",
        "provider": "vidgate",
        "native_id": "native_1",
        "spec": OLD_SPEC,
        "created_at": 1_700_000_000_000,
        "updated_at": 1_700_000_000_001,
        "started_at": 1_700_000_000_002,
        "completed_at": 1_700_000_000_003,
        "deadline_at": 1_700_000_000_004,
        "expected_seconds": 5,
        "progress": 100,
        "progress_source": "provider",
        "error": None,
        "attempts": orjson.dumps(ATTEMPTS).decode(),
        "outputs": orjson.dumps(OUTPUTS).decode(),
        "idempotency_key": "idem",
        "request_hash": "hash",
        "request_id": "req_1",
        "lease_owner": "worker-1",
        "lease_until": 1_700_000_000_005,
        "next_run_at": 1_700_000_000_006,
        "poll_failures": 3,
        "cancel_requested": 1,
        "quote": 4000,
        "cost": 2000,
        "billing_state": "settled",
        "is_byok": 1,
        "byok": "v1:sealed-text",
        "version": 9,
        "webhook_state": None,
    }
    row.update(overrides)
    return row


def test_every_column_lands_in_its_own_field() -> None:
    row = job_row()
    job = JobRecord.from_row(row)
    assert set(JobRecord.__struct_fields__) == set(row)
    for name, value in row.items():
        if name not in ("spec", "attempts", "outputs", "byok", "is_byok", "cancel_requested"):
            assert getattr(job, name) == value, name
    assert job.is_byok is True and job.cancel_requested is True
    assert job.outputs == tuple(StoredOutput(**o) for o in OUTPUTS)
    assert job.attempts is not None and job.attempts[0].lookups == 2 and job.attempts[1].store_failures == 1


def test_a_spec_the_previous_release_stored_decodes_and_encodes_back_key_for_key() -> None:
    spec = decode_spec(OLD_SPEC)
    assert spec.extras == Extras(enhance_prompt=True, resize_mode="crop")
    assert spec.references == (Reference("first_frame", "https://a.test/f.png"),)
    assert spec.routing.only == ("vidgate",) and spec.webhook is not None
    assert isinstance(spec.webhook.secret, Secret) and spec.webhook.secret.reveal() == WEBHOOK_SECRET
    assert encode_spec(spec) == OLD_SPEC
    bare = '{"model":"m","prompt":"p","duration":4,"width":8,"height":8}'  # keys a spec may lack still decode
    assert decode_spec(bare).routing == Routing() and decode_spec(bare).extras.names() == ()


def test_secrets_stay_out_of_a_records_repr() -> None:
    job = JobRecord.from_row(job_row(byok='{"openai": "sk-own-key"}'))
    shown = repr(job)
    assert "sk-own-key" not in shown and WEBHOOK_SECRET not in shown and "v1:" not in shown
    assert isinstance(job.byok, Secret) and job.byok.reveal() == '{"openai": "sk-own-key"}'


def test_the_poll_read_decodes_the_same_view_column_by_column() -> None:
    row = job_row()
    values = [row[c] for c in VIEW_COLUMNS.split(", ")]
    view = JobView.from_values(values)
    full = JobRecord.from_row(row)
    assert all(getattr(view, name) == getattr(full, name) for name in JobView.__struct_fields__)
    assert render(view, secret="s", now=1) == render(full, secret="s", now=1)


def test_json_columns_round_trip_with_every_key_the_worker_keeps() -> None:
    job = JobRecord.from_row(job_row())
    assert job.attempts is not None
    assert orjson.loads(column_json(job.attempts) or "") == ATTEMPTS
    assert orjson.loads(column_json(job.outputs) or "") == OUTPUTS
    error = job_error("upstream_error", "no", provider="openai", attempts=job.attempts)
    assert orjson.loads(column_json(error) or "") == {
        "code": "upstream_error",
        "message": "no",
        "provider": "openai",
        "attempts": ATTEMPTS,
    }
    shown = error.public()  # what a view shows of it: the public attempt fields only
    assert shown.attempts is not None and shown.attempts[0].__struct_fields__ == (
        "provider",
        "outcome",
        "at",
        "message",
        "status_code",
    )
    assert column_json(None) is None and Attempt("p", "accepted", 1).public() == ProviderAttempt("p", "accepted", 1)


def test_a_provider_sees_the_spec_with_the_jobs_context() -> None:
    spec = decode_spec(OLD_SPEC)
    image = ReferenceImage(role="first_frame", url="https://a.test/f.png", data=b"png", mime_type="image/png")
    job = JobSpec.of(spec, job_id="vid_1", provider_model="procedural-v1", deadline_at=5, references=(image,))
    assert (job.prompt, job.size, job.seed) == ("a fox", "1280x720", 7)
    assert (job.enhance_prompt, job.resize_mode) == (True, "crop")  # from the spec's extras
    assert job.person_generation is None and job.reference("first_frame") is image and job.reference("mask") is None
    assert job.references[0].data_url() == "data:image/png;base64,cG5n" and job.deadline_at == 5
    built = JobSpec(job_id="j", model="m", provider_model="pm", prompt="p", duration=5, width=8, height=8)
    assert (built.enhance_prompt, built.references, built.provider_params, built.audio) == (None, (), {}, False)
    assert isinstance(built, VideoSpec)
