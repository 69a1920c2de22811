"""``GET /v1/videos/{id}/request``: what the caller's job was created with (``jobs.request_view``)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from vidgate.errors import NotFoundError
from vidgate.gateway.api.http import json_response, owner
from vidgate.gateway.jobs.request_view import video_request
from vidgate.gateway.jobs.spec import decode_spec
from vidgate.gateway.services import services
from vidgate.gateway.storage.db import Q

# The spec column alone, by the primary key; another owner's job reads as no job at all.
_SPEC = Q("SELECT spec FROM jobs WHERE id = :id AND owner_id = :owner")


async def get_video_request(request: Request) -> Response:
    g = services(request)
    who = await owner(request)
    job_id = request.path_params["video_id"]
    values = await g.db.fetchone_values(_SPEC, {"id": job_id, "owner": who})
    if values is None:
        raise NotFoundError(f"no video {job_id}", param="video_id")
    return json_response(video_request(job_id, decode_spec(values[0])))
