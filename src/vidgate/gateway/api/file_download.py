"""``GET /v1/files/{file_id}/download``: an upload's bytes through a signed link, without the API key.

The worker hands such a link to an upstream that reads an input by URL only (``worker/input_links``),
so the upstream fetches the gateway's own copy. The link is refused as a video link is (403 in the
envelope when tampered, malformed or expired); an upload deleted or expired since is a 404. Ranges
are served as for an output (``videos.serve_stored``).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from vidgate.errors import NotFoundError, PermissionDeniedError
from vidgate.gateway.api.endpoint import Endpoint
from vidgate.gateway.api.openapi import Operation, Reply, query
from vidgate.gateway.api.route_params import FILE_ID, RANGE
from vidgate.gateway.api.videos import serve_stored
from vidgate.gateway.catalog.references import MIME_TYPES
from vidgate.gateway.ids import now_s
from vidgate.gateway.jobs.files import find_any_owner
from vidgate.gateway.jobs.signing import verify_file
from vidgate.gateway.services import services

# Every type an upload may be; the video first, so the document lists the range answer (206) too.
FILE_TYPES = ",".join(["video/mp4", *sorted(t for kind in MIME_TYPES.values() for t in kind if t != "video/mp4")])


async def signed_file_download(request: Request) -> Response:
    """A signed link works without the API key; tampering, expiry or another file's link is 403."""
    g = services(request)
    file_id = request.path_params["file_id"]
    q = request.query_params
    try:
        expires, signature = int(q["expires"]), q["signature"]
    except (KeyError, ValueError):
        raise PermissionDeniedError("this download link is incomplete or malformed") from None
    if not verify_file(g.settings.signing_secret, file_id, expires, signature):
        raise PermissionDeniedError("this download link's signature does not match")
    if expires < now_s():
        raise PermissionDeniedError("this download link has expired; ask for a new one")
    found = await find_any_owner(g.db, file_id)
    if found is None:
        raise NotFoundError(f"no file {file_id}: it was deleted or has expired", param="file_id")
    name = found.key.rsplit("/", 1)[-1]
    ext = name[name.index(".") :] if "." in name else ""
    return await serve_stored(request, found, f"{file_id}{ext}", "inline")


ENDPOINT = Endpoint(
    "/v1/files/{file_id}/download",
    ("GET", "HEAD"),
    signed_file_download,
    Operation(
        "downloadFileSigned",
        "An upload's bytes through a signed link (no API key; tampered, expired or foreign links are 403), "
        "as the gateway gives an upstream that reads inputs by URL only",
        Reply("200", None),
        params=(
            FILE_ID,
            query("expires", {"type": "integer"}, required=True),
            query("signature", {"type": "string"}, required=True),
            RANGE,
        ),
        errors=("403", "404", "416"),
        auth=None,
        content=FILE_TYPES,
    ),
)
