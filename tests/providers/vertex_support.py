"""What the Vertex AI (Veo) adapter tests share: the model, its wiring and a job, reference images,
and the fake's recorded create."""

from __future__ import annotations

from functools import partial

from fakes.vertex_fake import VertexFake

from providers.harness import job_maker
from providers.wiring import WIRINGS
from vidgate.gateway.providers.base import ReferenceImage

PNG = b"\x89PNG\r\n\x1a\n" + b"\x01" * 24
MODEL = "veo-3.0-generate-001"
MODEL_PATH = f"projects/proj-test/locations/us-central1/publishers/google/models/{MODEL}"


WIRE = WIRINGS["google-vertex"]
config = partial(WIRE.config, timeout_seconds=5)
make_job = job_maker(
    job_id="vid_01JTESTVERTEX",
    model="google/veo-3.0",
    provider_model=MODEL,
    prompt="a lighthouse at dusk, slow push-in",
    duration=8,
    width=1280,
    height=720,
)


def ref(role: str, data: bytes = PNG, mime: str = "image/png") -> ReferenceImage:
    return ReferenceImage(role=role, url=f"https://example.test/{role}", data=data, mime_type=mime)


def create_request(fake: VertexFake):  # type: ignore[no-untyped-def]
    (rec,) = [r for r in fake.requests if r.path.endswith(":predictLongRunning")]
    return rec


def vertex_fake() -> VertexFake:
    """A fresh fake for project ``proj-test`` that takes the token ``ya29.test``."""
    return VertexFake(token="ya29.test", project="proj-test", polls_to_complete=3)
