"""Parameters, replies and examples that several entries of the route table document alike."""

from __future__ import annotations

from vidgate.gateway.api import videos
from vidgate.gateway.api.openapi import Hidden, Reply, header, path_param, query

VIDEO_ID = path_param("video_id")
KEY_ID = path_param("key_id")
ENDPOINT_ID = path_param("endpoint_id")
FILE_ID = path_param("file_id")
INDEX = {"type": "integer", "minimum": 0, "maximum": 63}
RANGE = header("Range", {"type": "string", "pattern": "^bytes=[0-9]*-[0-9]*$"})
# video: the output (the default); thumbnail: its poster frame (WebP); spritesheet: its frames in a grid (JPEG)
VARIANT = {"type": "string", "enum": list(videos.VARIANTS), "default": "video"}
VARIANT_TYPES = "video/mp4,image/webp,image/jpeg"
VIDEO = Reply("200", "Video")
# Seconds to hold the poll until the job moves past the version the client has (If-None-Match, else
# the one at the request); a finished job, or a process at its cap of held polls, answers at once.
LONG_POLL_WAIT = query("wait", {"type": "number", "exclusiveMinimum": 0, "maximum": 30})
# An ETag of an earlier answer: 304 while the job is still that version.
IF_NONE_MATCH = header("If-None-Match", {"type": "string"})
CREATE_EXAMPLE = {"model": "vidgate/procedural", "prompt": "a lighthouse at dusk", "duration": 1, "size": "128x72"}
OPENAI = Hidden("the OpenAI video dialect, documented by OpenAI")
ADMIN_PAGE = (query("limit", {"type": "integer", "minimum": 1, "maximum": 500}), query("after", {"type": "string"}))
