"""``GET /v1/videos/{id}/request``: what a job was created with (``jobs.request_view``).

Its owner reads it, and so does the admin key, whatever the owner (the request log links to it);
to any other key another owner's job reads as no job at all. An input named by an ``ast_…`` id
carries the job that made it, while that output is still the job owner's.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from vidgate.errors import NotFoundError
from vidgate.gateway.api.http import json_response
from vidgate.gateway.jobs import assets
from vidgate.gateway.jobs.request_view import asset_inputs, video_request
from vidgate.gateway.jobs.spec import decode_spec
from vidgate.gateway.services import services
from vidgate.gateway.storage.db import Database, Q

# The spec and owner alone, by the primary key.
_SPEC = Q("SELECT spec, owner_id FROM jobs WHERE id = :id AND owner_id = :owner")
_ANY_SPEC = Q("SELECT spec, owner_id FROM jobs WHERE id = :id")


async def _asset_jobs(db: Database, owner: str, asset_ids: list[str]) -> dict[str, str]:
    """The job that made each asset, for the assets the owner still has."""
    found = [await assets.find(db, owner, asset_id) for asset_id in asset_ids]
    return {asset.id: asset.job_id for asset in found if asset is not None}


async def get_video_request(request: Request) -> Response:
    g = services(request)
    principal = await g.keys.authenticate(request.headers.get("authorization"), allow_admin=True)
    await g.keys.throttle(principal)
    job_id = request.path_params["video_id"]
    if principal.is_admin:
        values = await g.db.fetchone_values(_ANY_SPEC, {"id": job_id})
    else:
        values = await g.db.fetchone_values(_SPEC, {"id": job_id, "owner": principal.owner_id})
    if values is None:
        raise NotFoundError(f"no video {job_id}", param="video_id")
    spec = decode_spec(values[0])
    assets = asset_inputs(spec)
    made_by = await _asset_jobs(g.db, values[1], assets) if assets else None
    return json_response(video_request(job_id, spec, made_by))
