"""API keys: stored only as SHA-256 hashes; each key is an owner that sees only its own jobs."""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from vidgate.errors import AuthenticationError, NotFoundError, PermissionDeniedError, RateLimitError
from vidgate.gateway.billing import ledger
from vidgate.gateway.billing.limits import Limiter, RateLimiter
from vidgate.gateway.billing.rate_buckets import SharedRateLimiter
from vidgate.gateway.events.outbox import CHANNEL, NOTIFY_ORIGIN
from vidgate.gateway.ids import new_id, now_ms, token
from vidgate.gateway.secret import Secret, secret
from vidgate.gateway.storage.db import Database, Q, Row
from vidgate.types import APIKey

KEY_PREFIX = "vg_"
CACHE_SECONDS = 2.0  # bounds how long another process may still accept a key revoked elsewhere
KEY_REVOKED = "key.revoked"  # on the events channel: "<owner_id> key.revoked <origin>"

_BY_HASH = Q(
    "SELECT k.id, k.owner_id, k.revoked_at, a.rate_per_second, a.rate_burst FROM api_keys k "
    "LEFT JOIN accounts a ON a.owner_id = k.owner_id WHERE k.key_hash = :hash"
)
_INSERT = Q(
    "INSERT INTO api_keys (id, owner_id, name, key_hash, prefix, created_at) "
    "VALUES (:id, :owner, :name, :hash, :prefix, :now)"
)
_BY_ID = Q(
    "SELECT k.id, k.owner_id, k.revoked_at, a.rate_per_second, a.rate_burst FROM api_keys k "
    "LEFT JOIN accounts a ON a.owner_id = k.owner_id WHERE k.id = :id"
)
# Other processes learn of a revocation at its commit, as they learn of events (events/notify.py).
_NOTIFY_REVOKED = Q("SELECT :payload", pg=f"SELECT pg_notify('{CHANNEL}', :payload)")
_LIST = Q("SELECT id, name, prefix, created_at, revoked_at FROM api_keys ORDER BY id")
_REVOKE = Q("UPDATE api_keys SET revoked_at = :now WHERE id = :id AND revoked_at IS NULL")
_GET = Q("SELECT id, name, prefix, created_at, revoked_at, owner_id FROM api_keys WHERE id = :id")


@dataclass(frozen=True, slots=True)
class Principal:
    owner_id: str
    key_id: str
    is_admin: bool = False
    rate_per_second: float = 0.0
    rate_burst: int = 0


ADMIN = Principal(owner_id="admin", key_id="admin", is_admin=True)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def bearer(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


class Keys:
    def __init__(
        self, db: Database, admin_key: Secret | str | None, *, default_rate: float = 0.0, default_burst: int = 0
    ) -> None:
        self.db = db
        self.admin_key = secret(admin_key)
        self.default_rate = default_rate
        self.default_burst = default_burst
        # On PostgreSQL every API process takes from one bucket per key; SQLite is one process's own.
        self.limiter: Limiter = SharedRateLimiter(db) if db.dialect == "postgresql" else RateLimiter()
        self._cache: dict[str, tuple[Principal, float]] = {}
        self._revoke_hooks: list[Callable[[str], None]] = []

    async def authenticate(self, header: str | None, *, allow_admin: bool = False) -> Principal:
        key = bearer(header)
        if key is None:
            raise AuthenticationError("missing API key: send Authorization: Bearer <key>")
        if self.admin_key and hmac.compare_digest(key.encode(), self.admin_key.reveal().encode()):
            if allow_admin:
                return ADMIN
            raise PermissionDeniedError("the admin key manages keys; use an API key for videos")
        return await self.principal(key)

    async def principal(self, key: str) -> Principal:
        digest = hash_key(key)
        hit = self._cache.get(digest)
        now = time.monotonic()
        if hit is not None and hit[1] > now:
            return hit[0]
        # The lookup is by an indexed hash of the key, so its timing tells nothing about the key.
        row = await self.db.fetchone(_BY_HASH, {"hash": digest})
        if row is None or row["revoked_at"] is not None:
            self._cache.pop(digest, None)
            raise AuthenticationError("invalid or revoked API key")
        principal = self._principal(row)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[digest] = (principal, now + CACHE_SECONDS)
        return principal

    def _principal(self, row: Row) -> Principal:
        return Principal(
            owner_id=row["owner_id"],
            key_id=row["id"],
            rate_per_second=float(row["rate_per_second"] or self.default_rate),
            rate_burst=int(row["rate_burst"] or 0),
        )

    async def by_id(self, key_id: str) -> Principal:
        """The key ``key_id`` if it is live, read afresh (not cached): a stream token dies with its key."""
        row = await self.db.fetchone(_BY_ID, {"id": key_id})
        if row is None or row["revoked_at"] is not None:
            raise AuthenticationError("the API key this was issued to is revoked")
        return self._principal(row)

    def on_revoke(self, hook: Callable[[str], None]) -> None:
        """Call ``hook(owner_id)`` whenever a key is revoked, in this process or another."""
        self._revoke_hooks.append(hook)

    def revoked(self, owner_id: str) -> None:
        """A key of ``owner_id`` was revoked here or elsewhere: forget it and tell the hooks (open streams)."""
        self._cache = {h: v for h, v in self._cache.items() if v[0].owner_id != owner_id}
        for hook in self._revoke_hooks:
            hook(owner_id)

    async def throttle(self, principal: Principal) -> None:
        """Per-key token bucket: 429 with Retry-After when the key sends faster than its rate."""
        if principal.rate_per_second <= 0:
            return
        burst = principal.rate_burst or self.default_burst or max(1, int(principal.rate_per_second))
        wait = await self.limiter.take(principal.key_id, principal.rate_per_second, burst)
        if wait > 0:
            raise RateLimitError(
                f"this key is limited to {principal.rate_per_second:g} requests a second (burst {burst})",
                headers={"Retry-After": str(max(1, math.ceil(wait)))},
                details={"limit": "requests"},
            )

    async def require_admin(self, header: str | None) -> None:
        principal = await self.authenticate(header, allow_admin=True)
        if not principal.is_admin:
            raise PermissionDeniedError("this route needs the admin key (VIDGATE_ADMIN_KEY)")

    async def create(self, name: str, balance_micros: int) -> APIKey:
        secret = KEY_PREFIX + token(24)
        key_id = new_id("key")
        now = now_ms()
        async with self.db.transaction() as tx:
            await tx.execute(
                _INSERT,
                {
                    "id": key_id,
                    "owner": key_id,
                    "name": name,
                    "hash": hash_key(secret),
                    "prefix": secret[:10],
                    "now": now,
                },
            )
            await ledger.open_account(tx, key_id, balance_micros)
        return APIKey(id=key_id, name=name, created_at=now // 1000, key=secret, prefix=secret[:10])

    async def list(self) -> list[APIKey]:
        rows = await self.db.fetchall(_LIST)
        return [
            APIKey(
                id=r["id"],
                name=r["name"],
                created_at=r["created_at"] // 1000,
                prefix=r["prefix"],
                revoked_at=None if r["revoked_at"] is None else r["revoked_at"] // 1000,
            )
            for r in rows
        ]

    async def revoke(self, key_id: str) -> APIKey:
        async with self.db.transaction() as tx:
            await tx.execute(_REVOKE, {"id": key_id, "now": now_ms()})
            row = await tx.fetchone(_GET, {"id": key_id})
            if row is not None and tx.dialect == "postgresql":
                await tx.fetchone(_NOTIFY_REVOKED, {"payload": f"{row['owner_id']} {KEY_REVOKED} {NOTIFY_ORIGIN}"})
        if row is None:
            raise NotFoundError(f"no API key {key_id}")
        self.revoked(row["owner_id"])
        return APIKey(
            id=row["id"],
            name=row["name"],
            created_at=row["created_at"] // 1000,
            prefix=row["prefix"],
            revoked_at=None if row["revoked_at"] is None else row["revoked_at"] // 1000,
        )
