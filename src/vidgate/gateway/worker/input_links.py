"""Links to the gateway's own copy of an input, for upstreams that read some inputs by https URL only.

An input named as an upload (``file_…``) or an earlier output (``ast_…``, ``vid_…``) has no URL of its
own. Where one can be given, the reference carries a short-lived link to the gateway's copy instead:
a signed link on ``public_url`` when that is https (``/v1/files/{id}/download`` for an upload, the
output's ``/v1/videos/{id}/download`` for an output), else the object store's presigned URL when that
is https; otherwise none, and such an upstream refuses the job as before.

A signed link's expiry is the job's own (``expiry``), not the moment it is made, so a create sent
again, or looked for after a lost answer by what was sent (an upstream that echoes the request),
carries the very same link. A link is a bearer credential for that one object: it goes only into
the upstream's request, never into a log line, an error or an answer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from obstore.exceptions import BaseError

from vidgate.gateway.ids import now_s
from vidgate.gateway.jobs.signing import sign_file_path, sign_path
from vidgate.gateway.secret import Secret
from vidgate.gateway.storage.blobs import BlobStore

log = logging.getLogger("vidgate.worker")
HTTPS = "https://"


def signed_base(public_url: str) -> str | None:
    """Where signed links start: ``public_url`` when it is https (an upstream reaches nothing else), else None."""
    return public_url if public_url.startswith(HTTPS) else None


def usable_presigned(url: str | None) -> str:
    """A presigned URL an upstream may be given: only an https one (a store on plain http is a private
    one, or one the upstream would refuse); else empty."""
    return url if url is not None and url.startswith(HTTPS) else ""


def expiry(created_at_ms: int, deadline_at_ms: int, ttl_seconds: int) -> int:
    """When a job's input links expire (epoch seconds): ``ttl_seconds`` after its create, and never
    before its deadline, by which the upstream has read its inputs or the job is over."""
    return max(created_at_ms // 1000 + ttl_seconds, -(-deadline_at_ms // 1000))


@dataclass(frozen=True)
class InputLinks:
    """Makes the links of one job's inputs."""

    public_url: str
    secret: Secret
    blobs: BlobStore
    expires: int

    async def file(self, file_id: str, key: str) -> str:
        """A link to an upload's bytes, or empty when none can be given."""
        if (base := signed_base(self.public_url)) is not None:
            return base + sign_file_path(self.secret, file_id, self.expires)
        return await self._presigned(key)

    async def output(self, job_id: str, index: int, key: str) -> str:
        """A link to output ``index`` of a job, or empty when none can be given."""
        if (base := signed_base(self.public_url)) is not None:
            return base + sign_path(self.secret, job_id, index, "inline", self.expires)
        return await self._presigned(key)

    async def _presigned(self, key: str) -> str:
        if self.blobs.is_local:
            return ""
        try:
            url = await self.blobs.presign(key, max(60, self.expires - now_s()))
        except BaseError as exc:  # a store that cannot sign (no static credentials): no link, as on http
            log.warning("the object store cannot presign an input link (%s)", type(exc).__name__)
            return ""
        return usable_presigned(url)
