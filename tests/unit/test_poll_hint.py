"""poll_after_seconds follows the expected remaining time, clamped to 1..20 seconds."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from vidgate.gateway.jobs.views import poll_after_seconds


def hint(status: str = "processing", elapsed: float = 0.0, progress: int | None = None, expected: float = 60) -> int:
    return poll_after_seconds(
        status=status, now=int(elapsed * 1000), created_at=0, started_at=0, progress=progress, expected_seconds=expected
    )


def test_follows_the_model_latency_and_progress() -> None:
    assert hint(expected=6) == 2  # a quick local render: poll again soon
    assert hint(expected=600) == 20  # a slow upstream: no point asking every few seconds
    assert hint(elapsed=50, expected=60) < hint(elapsed=0, expected=60)  # nearer the end, sooner
    assert hint(elapsed=10, progress=50, expected=600) == 4  # real progress beats the estimate: 10 s left
    assert hint(elapsed=10, progress=95, expected=600) == 1
    assert hint(status="queued", expected=6) >= hint(status="processing", expected=6)


@given(
    st.sampled_from(["queued", "processing"]),
    st.floats(0, 10_000),
    st.one_of(st.none(), st.integers(0, 100)),
    st.floats(1, 10_000),
)
def test_always_between_1_and_20(status: str, elapsed: float, progress: int | None, expected: float) -> None:
    assert 1 <= hint(status, elapsed, progress, expected) <= 20
