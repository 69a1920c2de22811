"""Webhook endpoints: receivers registered once per key, which jobs name by id.

Every query is scoped to the owner, so another key's endpoint is simply not there. Secrets are
sealed at rest (``SecretBox``, bound to the endpoint's id) and leave this module only as the
``Secret`` the deliverer signs with, or once, in the answer to the create or rotation that made
them. A rotation keeps the previous secret signing beside the new one for an overlap window.
A deleted endpoint keeps its row (a job naming it then fails its deliveries with a reason) but
not its secrets.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import msgspec
import orjson

from vidgate.errors import NotFoundError, ValidationError
from vidgate.gateway.catalog.inputs import clip
from vidgate.gateway.catalog.webhook_config import check_secret, check_webhook_url, endpoint_events
from vidgate.gateway.events.webhook_events import DEFAULT_EVENTS, video_event
from vidgate.gateway.events.webhook_state import iso
from vidgate.gateway.ids import new_id, now_ms
from vidgate.gateway.jobs.spec import VideoSpec
from vidgate.gateway.secret import Secret, SecretBox
from vidgate.gateway.storage.db import Database, Q, Row
from vidgate.types import (
    WebhookEndpoint,
    WebhookEndpointCreate,
    WebhookEndpointSecret,
    WebhookEndpointStatus,
    WebhookEndpointUpdate,
)

MAX_ENDPOINTS = 100  # per key, deleted ones aside
MAX_NAME = 200
MAX_OVERLAP_SECONDS = 7 * 24 * 3600
SECRET_BYTES = 32

_COLUMNS = (
    "id, owner_id, name, url, events, status, secret, previous_secret, previous_until, created_at, updated_at, "
    "deleted_at"
)
_INSERT = Q(
    f"INSERT INTO webhook_endpoints ({_COLUMNS}) VALUES (:id, :owner, :name, :url, :events, 'active', :secret, "
    "NULL, NULL, :now, :now, NULL) RETURNING *"
)
_GET = Q("SELECT * FROM webhook_endpoints WHERE id = :id AND owner_id = :owner AND status != 'deleted'")
_GET_ANY_STATUS = Q("SELECT * FROM webhook_endpoints WHERE id = :id AND owner_id = :owner")
_LIST = Q("SELECT * FROM webhook_endpoints WHERE owner_id = :owner AND status != 'deleted' ORDER BY id")
_COUNT = Q("SELECT COUNT(*) AS n FROM webhook_endpoints WHERE owner_id = :owner AND status != 'deleted'")
_UPDATE = Q(
    "UPDATE webhook_endpoints SET name = :name, url = :url, events = :events, status = :status, updated_at = :now "
    "WHERE id = :id AND owner_id = :owner AND status != 'deleted' RETURNING *"
)
_ROTATE = Q(
    "UPDATE webhook_endpoints SET secret = :secret, previous_secret = :previous, previous_until = :until, "
    "updated_at = :now WHERE id = :id AND owner_id = :owner AND status != 'deleted' RETURNING *"
)
_DELETE = Q(
    "UPDATE webhook_endpoints SET status = 'deleted', secret = '', previous_secret = NULL, previous_until = NULL, "
    "updated_at = :now, deleted_at = :now WHERE id = :id AND owner_id = :owner AND status != 'deleted' RETURNING *"
)


class EndpointRecord(msgspec.Struct, frozen=True):
    """A row of ``webhook_endpoints``; its secrets still sealed."""

    id: str
    owner_id: str
    name: str
    url: str
    events: tuple[str, ...]
    status: WebhookEndpointStatus
    sealed: Secret | None
    previous_sealed: Secret | None
    previous_until: int | None
    created_at: int
    updated_at: int
    deleted_at: int | None

    @classmethod
    def from_row(cls, row: Row) -> EndpointRecord:
        sealed, previous = row["secret"], row["previous_secret"]
        return cls(
            row["id"],
            row["owner_id"],
            row["name"],
            row["url"],
            tuple(orjson.loads(row["events"])),
            row["status"],
            Secret(sealed) if sealed else None,
            Secret(previous) if previous else None,
            row["previous_until"],
            row["created_at"],
            row["updated_at"],
            row["deleted_at"],
        )

    def public(self) -> WebhookEndpoint:
        return WebhookEndpoint(
            id=self.id,
            name=self.name,
            url=self.url,
            events=list(self.events),
            hasSecret=self.sealed is not None,
            status=self.status,
            workspaceId=self.owner_id,
            createdAt=iso(self.created_at),
            updatedAt=iso(self.updated_at),
            deletedAt=iso(self.deleted_at),
        )

    def with_secret(self, secret: Secret) -> WebhookEndpointSecret:
        shown = {**msgspec.structs.asdict(self.public()), "signing_secret": secret.reveal()}
        return msgspec.convert(shown, WebhookEndpointSecret)

    def video_events(self) -> tuple[str, ...]:
        """What a job sent here subscribes to, as ``video.*`` names (``batch.*`` never fires)."""
        names = (video_event(e) for e in self.events if not e.startswith("batch."))
        return tuple(dict.fromkeys(n for n in names if n is not None))


def generate_secret() -> Secret:
    """``whsec_`` + URL-safe base64 of 32 random bytes, as the reference makes them, drawn again until
    it has no ``-`` or ``_``: then it is standard base64 too, and every Standard Webhooks library
    decodes it to the same key."""
    while True:
        text = base64.urlsafe_b64encode(os.urandom(SECRET_BYTES)).decode().rstrip("=")
        if "-" not in text and "_" not in text:
            return Secret("whsec_" + text)


class Endpoints:
    """The endpoints of every owner, each call scoped to one."""

    def __init__(self, db: Database, box: SecretBox, *, allow_http: bool) -> None:
        self.db = db
        self.box = box
        self.allow_http = allow_http

    def _seal(self, endpoint_id: str, secret: Secret) -> str:
        return self.box.seal(secret.reveal().encode(), context=endpoint_id)

    def _open(self, endpoint_id: str, sealed: Secret) -> Secret:
        return Secret(self.box.open(sealed.reveal(), context=endpoint_id).decode())

    async def create(self, owner: str, req: WebhookEndpointCreate) -> tuple[EndpointRecord, Secret]:
        check_webhook_url(req.url, "url", allow_http=self.allow_http)
        name = _name(req.name) if req.name is not msgspec.UNSET else (urlsplit(req.url).hostname or "")
        events = endpoint_events(req.events) if req.events is not msgspec.UNSET and req.events else DEFAULT_EVENTS
        secret = generate_secret() if req.secret is msgspec.UNSET else Secret(check_secret(req.secret, "secret"))
        endpoint_id = new_id("whe")
        async with self.db.transaction() as tx:
            count = await tx.fetchone(_COUNT, {"owner": owner})
            if count is not None and count["n"] >= MAX_ENDPOINTS:
                raise ValidationError(f"a key may have at most {MAX_ENDPOINTS} webhook endpoints; delete one first")
            row = await tx.fetchone(
                _INSERT,
                {
                    "id": endpoint_id,
                    "owner": owner,
                    "name": name,
                    "url": req.url,
                    "events": orjson.dumps(list(events)).decode(),
                    "secret": self._seal(endpoint_id, secret),
                    "now": now_ms(),
                },
            )
        assert row is not None
        return EndpointRecord.from_row(row), secret

    async def for_owner(self, owner: str) -> list[EndpointRecord]:
        return [EndpointRecord.from_row(r) for r in await self.db.fetchall(_LIST, {"owner": owner})]

    async def get(self, owner: str, endpoint_id: str) -> EndpointRecord:
        row = await self.db.fetchone(_GET, {"id": endpoint_id, "owner": owner})
        if row is None:
            raise NotFoundError(f"no webhook endpoint {clip(endpoint_id)}", param="id")
        return EndpointRecord.from_row(row)

    async def update(self, owner: str, endpoint_id: str, req: WebhookEndpointUpdate) -> EndpointRecord:
        current = await self.get(owner, endpoint_id)
        url = current.url
        if req.url is not msgspec.UNSET:
            check_webhook_url(req.url, "url", allow_http=self.allow_http)
            url = req.url
        events = current.events
        if req.events is not msgspec.UNSET:
            events = endpoint_events(req.events) if req.events else DEFAULT_EVENTS
        params = {
            "id": endpoint_id,
            "owner": owner,
            "name": _name(req.name) if req.name is not msgspec.UNSET else current.name,
            "url": url,
            "events": orjson.dumps(list(events)).decode(),
            "status": req.status if req.status is not msgspec.UNSET else current.status,
            "now": now_ms(),
        }
        return await self._write(_UPDATE, params)

    async def rotate(self, owner: str, endpoint_id: str, overlap_seconds: int) -> tuple[EndpointRecord, Secret]:
        """A new secret; the current one keeps signing beside it for ``overlap_seconds``."""
        if not 0 <= overlap_seconds <= MAX_OVERLAP_SECONDS:
            raise ValidationError(
                f"overlap_seconds must be between 0 and {MAX_OVERLAP_SECONDS}", param="overlap_seconds"
            )
        current = await self.get(owner, endpoint_id)
        secret = generate_secret()
        now = now_ms()
        keep = current.sealed is not None and overlap_seconds > 0
        params = {
            "id": endpoint_id,
            "owner": owner,
            "secret": self._seal(endpoint_id, secret),
            # The same sealed text moves over: it stays bound to this endpoint's id.
            "previous": current.sealed.reveal() if keep and current.sealed is not None else None,
            "until": now + overlap_seconds * 1000 if keep else None,
            "now": now,
        }
        return await self._write(_ROTATE, params), secret

    async def delete(self, owner: str, endpoint_id: str) -> EndpointRecord:
        return await self._write(_DELETE, {"id": endpoint_id, "owner": owner, "now": now_ms()})

    async def _write(self, q: Q, params: Mapping[str, Any]) -> EndpointRecord:
        async with self.db.transaction() as tx:
            row = await tx.fetchone(q, params)
        if row is None:
            raise NotFoundError(f"no webhook endpoint {clip(str(params['id']))}", param="id")
        return EndpointRecord.from_row(row)

    async def for_delivery(self, owner: str, endpoint_id: str) -> EndpointRecord | None:
        """The endpoint a job names, whatever its status (None once its row is gone)."""
        row = await self.db.fetchone(_GET_ANY_STATUS, {"id": endpoint_id, "owner": owner})
        return None if row is None else EndpointRecord.from_row(row)

    def signing_secrets(self, endpoint: EndpointRecord, now: int) -> list[Secret]:
        """The secrets that sign a delivery now, newest first."""
        secrets = [] if endpoint.sealed is None else [self._open(endpoint.id, endpoint.sealed)]
        if endpoint.previous_sealed is not None and (endpoint.previous_until or 0) > now:
            secrets.append(self._open(endpoint.id, endpoint.previous_sealed))
        return secrets


def _name(name: str) -> str:
    name = name.strip()
    if len(name) > MAX_NAME:
        raise ValidationError(f"name is longer than {MAX_NAME} characters", param="name")
    return name


async def resolve_job_webhook(db: Database, owner: str, spec: VideoSpec) -> VideoSpec:
    """A create naming an endpoint: the endpoint's url and events (unless the job gives its own) in
    the job's spec; an endpoint that is not the owner's, deleted or disabled is a 400."""
    hook = spec.webhook
    if hook is None or not hook.endpoint_id:
        return spec
    row = await db.fetchone(_GET, {"id": hook.endpoint_id, "owner": owner})
    if row is None:
        raise ValidationError(f"no webhook endpoint {clip(hook.endpoint_id)}", param="webhook.endpoint_id")
    endpoint = EndpointRecord.from_row(row)
    if endpoint.status != "active":
        raise ValidationError(
            f"webhook endpoint {endpoint.id} is {endpoint.status}; activate it first", param="webhook.endpoint_id"
        )
    events = hook.events or endpoint.video_events()
    if not events:
        raise ValidationError(
            f"webhook endpoint {endpoint.id} subscribes to no video events; give webhook.events",
            param="webhook.events",
        )
    webhook = msgspec.structs.replace(hook, url=endpoint.url, events=events)
    return msgspec.structs.replace(spec, webhook=webhook)
