"""How fast the procedural renderer is next to the ffmpeg CLI encoding the very same frames.

The baseline pipes the renderer's own yuv420p frames, generated beforehand, into ``ffmpeg`` with the
same x264 settings (``X264_OPTIONS``), so the ratio isolates what our Python side costs: frame
generation plus PyAV's per-frame overhead. Run ``python -m bench.render [--json PATH]``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from vidgate.gateway.render.procedural import X264_OPTIONS, RenderSpec, frames, render

CASES = ((640, 360, 4), (1280, 720, 8))
PROMPT = "a lighthouse on a cliff at dusk, waves crashing"


@dataclass(frozen=True, slots=True)
class Result:
    size: str
    seconds: int
    frames: int
    ours_fps: float
    ffmpeg_fps: float | None

    @property
    def ratio(self) -> float | None:
        return self.ours_fps / self.ffmpeg_fps if self.ffmpeg_fps else None


def time_ours(spec: RenderSpec, workdir: Path) -> float:
    """Wall time of the whole render: frames drawn, encoded, muxed, file written and probed."""
    started = time.perf_counter()
    render(spec, workdir / "ours.mp4")
    return time.perf_counter() - started


def time_ffmpeg(spec: RenderSpec, workdir: Path, raw: list[bytes], ffmpeg: str) -> float:
    """Wall time of ffmpeg encoding the prepared raw frames from a pipe, process start included."""
    x264_args = [arg for key, value in X264_OPTIONS.items() for arg in (f"-{key}", value)]
    command = [
        ffmpeg, "-hide_banner", "-loglevel", "error", "-y",
        "-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", f"{spec.width}x{spec.height}",
        "-framerate", str(spec.fps), "-i", "-",
        "-c:v", "libx264", *x264_args, "-pix_fmt", "yuv420p",
        "-movflags", "+faststart", str(workdir / "ffmpeg.mp4"),
    ]  # fmt: skip
    started = time.perf_counter()
    with subprocess.Popen(command, stdin=subprocess.PIPE) as proc:
        assert proc.stdin is not None
        for picture in raw:
            proc.stdin.write(picture)
        proc.stdin.close()
        if proc.wait() != 0:
            raise RuntimeError(f"ffmpeg failed with exit code {proc.returncode}")
    return time.perf_counter() - started


def measure(spec: RenderSpec, workdir: Path, repeat: int, ffmpeg: str | None) -> Result:
    """Best of ``repeat`` runs each, alternating the two so a busy machine slows both alike."""
    # The renderer's own pictures, in the pixel format it hands x264, made before any timing.
    raw = [frame.to_ndarray().tobytes() for frame in frames(spec)] if ffmpeg else []
    ours, theirs = float("inf"), float("inf")
    for _ in range(repeat):
        ours = min(ours, time_ours(spec, workdir))
        if ffmpeg:
            theirs = min(theirs, time_ffmpeg(spec, workdir, raw, ffmpeg))
    return Result(
        size=f"{spec.width}x{spec.height}",
        seconds=spec.duration,
        frames=spec.frame_count,
        ours_fps=spec.frame_count / ours,
        ffmpeg_fps=spec.frame_count / theirs if ffmpeg else None,
    )


def run(repeat: int) -> list[Result]:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        print("ffmpeg not found: showing our figures only (install it with `apt-get install -y ffmpeg`)")
    with tempfile.TemporaryDirectory(prefix="vidgate-bench-") as tmp:
        return [
            measure(RenderSpec(prompt=PROMPT, seed=7, width=w, height=h, duration=s), Path(tmp), repeat, ffmpeg)
            for w, h, s in CASES
        ]


def print_table(results: list[Result]) -> None:
    options = " ".join(f"{key}={value}" for key, value in X264_OPTIONS.items())
    print(f"libx264 {options}, yuv420p, best of runs, frames/s (higher is better)")
    print(f"{'size':>10} {'secs':>5} {'frames':>7} {'ours':>9} {'ffmpeg':>9} {'ratio':>7}")
    for r in results:
        ffmpeg = f"{r.ffmpeg_fps:9.1f}" if r.ffmpeg_fps else f"{'-':>9}"
        ratio = f"{r.ratio:7.2f}" if r.ratio else f"{'-':>7}"
        print(f"{r.size:>10} {r.seconds:>5} {r.frames:>7} {r.ours_fps:9.1f} {ffmpeg} {ratio}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--repeat", type=int, default=5, help="runs per measurement; the best counts")
    args = parser.parse_args(argv)
    results = run(max(1, args.repeat))
    print_table(results)
    if args.json is not None:
        payload = {
            "x264_options": X264_OPTIONS,
            "results": [{**asdict(r), "ratio": r.ratio} for r in results],
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n")


if __name__ == "__main__":
    main()
