"""Read what a video file actually holds, so outputs are described by facts rather than by the request."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av


class ProbeError(ValueError):
    """The file is not a video we can decode."""


@dataclass(frozen=True, slots=True)
class MediaInfo:
    width: int
    height: int
    duration_seconds: float
    frames: int
    fps: float
    video_codec: str
    pix_fmt: str
    has_audio: bool
    audio_codec: str | None
    mime_type: str = "video/mp4"


def probe(path: Path) -> MediaInfo:
    """Describe the first video stream of ``path``; raises ``ProbeError`` if it cannot be decoded."""
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ProbeError(f"{path.name}: no video stream")
            video = container.streams.video[0]
            audio = container.streams.audio[0] if container.streams.audio else None
            info = MediaInfo(
                width=video.codec_context.width,
                height=video.codec_context.height,
                duration_seconds=_duration(container, video),
                frames=video.frames or _count_packets(container, video),
                fps=round(float(video.average_rate or video.guessed_rate or 0), 3),
                video_codec=video.codec_context.name,
                pix_fmt=video.codec_context.pix_fmt or "",
                has_audio=audio is not None,
                audio_codec=audio.codec_context.name if audio is not None else None,
                mime_type=_mime_type(container),
            )
            # Headers can look fine on a truncated or corrupt file: insist on one real picture.
            container.seek(0)
            if next(container.decode(video), None) is None:
                raise ProbeError(f"{path.name}: no decodable video frame")
    except av.error.FFmpegError as exc:
        raise ProbeError(f"{path.name}: {exc}") from exc
    if info.width <= 0 or info.height <= 0:
        raise ProbeError(f"{path.name}: video stream has no picture size")
    return info


def _duration(container: av.container.InputContainer, video: av.VideoStream) -> float:
    if container.duration is not None:
        return round(container.duration / av.time_base, 3)
    if video.duration is not None and video.time_base is not None:
        return round(float(video.duration * video.time_base), 3)
    return 0.0


def _count_packets(container: av.container.InputContainer, video: av.VideoStream) -> int:
    """Count frames from packet headers alone: demuxing is far cheaper than decoding every picture."""
    count = sum(1 for packet in container.demux(video) if packet.size)
    container.seek(0)
    return count


def _mime_type(container: av.container.InputContainer) -> str:
    names = set(container.format.name.split(","))
    if "mp4" in names:
        # The mov demuxer reads both; only the major brand tells QuickTime files apart.
        brand = container.metadata.get("major_brand", "").strip()
        return "video/quicktime" if brand == "qt" else "video/mp4"
    if "webm" in names:
        return "video/webm"
    return f"video/{container.format.name.split(',')[0]}"
