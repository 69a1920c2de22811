"""What a render is asked for; equal specs give byte-identical files.

Inputs arrive as the bytes the gateway fetched: images (a first and a last frame, palette
references), a source video for ``extend`` and ``edit``, and a reference sound whose loudness
drives the motion and which is muxed into the output.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

_MAX_PIXELS: Final = 1920 * 1080
MAX_REFERENCES: Final = 4

Operation = Literal["generate", "extend", "edit"]


@dataclass(frozen=True, slots=True)
class RenderSpec:
    """Everything that determines the output; equal specs give byte-identical files."""

    prompt: str
    seed: int
    width: int
    height: int
    duration: int
    fps: int = 24
    audio: bool = False
    first_frame: bytes | None = None
    negative_prompt: str | None = None
    operation: Operation = "generate"
    source: bytes | None = None  # the video an ``extend`` continues or an ``edit`` re-makes
    last_frame: bytes | None = None
    references: tuple[bytes, ...] = ()  # images whose colours the output takes on
    sound: bytes | None = None  # reference audio: drives the motion and becomes the soundtrack

    def __post_init__(self) -> None:
        # Bounds per side plus a pixel budget, so portrait sizes such as 720x1280 fit as well.
        for name, side in (("width", self.width), ("height", self.height)):
            if not 64 <= side <= 1920 or side % 2:
                raise ValueError(f"{name} must be even and within 64..1920, got {side}")
        if self.width * self.height > _MAX_PIXELS:
            raise ValueError(f"{self.width}x{self.height} exceeds 1920x1080 pixels")
        if not 1 <= self.duration <= 20:
            raise ValueError(f"duration must be 1..20 seconds, got {self.duration}")
        if not 1 <= self.fps <= 60:
            raise ValueError(f"fps must be 1..60, got {self.fps}")
        if (self.operation != "generate") != (self.source is not None):
            raise ValueError(f"a source video is needed for extend and edit, and only there (got {self.operation})")
        if len(self.references) > MAX_REFERENCES:
            raise ValueError(f"at most {MAX_REFERENCES} reference images, got {len(self.references)}")

    @property
    def frame_count(self) -> int:
        """Frames drawn from the prompt: all of them for ``generate``, the continuation for ``extend``.

        An ``edit`` (and the source part of an ``extend``) runs as long as its source: see ``operations.frame_total``.
        """
        return self.duration * self.fps

    @property
    def identity(self) -> tuple[str, str, int]:
        """What the picture and the tune are drawn from."""
        return self.prompt, self.negative_prompt or "", self.seed
