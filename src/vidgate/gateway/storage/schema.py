"""The one schema, declared once for SQLite and PostgreSQL; Alembic migrates from it.

Times are integer epoch milliseconds, money integer micro-dollars, JSON is stored as text.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Float, Index, Integer, MetaData, SmallInteger, Table, Text, text

metadata = MetaData()

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Text, primary_key=True),
    Column("owner_id", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("key_hash", Text, nullable=False, unique=True),
    Column("prefix", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger),
)

accounts = Table(
    "accounts",
    metadata,
    Column("owner_id", Text, primary_key=True),
    Column("balance", BigInteger, nullable=False, server_default="0"),
    Column("held", BigInteger, nullable=False, server_default="0"),
    Column("daily_limit", BigInteger),
    Column("monthly_limit", BigInteger),
    Column("rate_per_second", Integer),
    Column("rate_burst", Integer),
    Column("max_concurrent_jobs", Integer),
    Column("created_at", BigInteger, nullable=False),
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", Text, primary_key=True),
    Column("owner_id", Text, nullable=False),
    Column("model", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("provider", Text),
    Column("native_id", Text),
    Column("spec", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("started_at", BigInteger),
    Column("completed_at", BigInteger),
    Column("deadline_at", BigInteger, nullable=False),
    Column("expected_seconds", Integer, nullable=False),
    Column("progress", SmallInteger),
    Column("progress_source", Text),
    Column("error", Text),
    Column("attempts", Text),
    Column("outputs", Text),
    Column("idempotency_key", Text),
    Column("request_hash", Text),
    Column("request_id", Text),
    Column("lease_owner", Text),
    Column("lease_until", BigInteger),
    Column("next_run_at", BigInteger),
    Column("poll_failures", Integer, nullable=False, server_default="0"),
    Column("cancel_requested", SmallInteger, nullable=False, server_default="0"),
    Column("quote", BigInteger, nullable=False, server_default="0"),
    Column("cost", BigInteger),
    Column("billing_state", Text, nullable=False, server_default="none"),
    Column("is_byok", SmallInteger, nullable=False, server_default="0"),
    Column("byok", Text),  # the owner's own provider credentials for this job; never rendered or logged
    Column("version", Integer, nullable=False, server_default="0"),
    Column("webhook_state", Text),  # the deliverer's summary of the job's webhook attempts, read with the job
    Index("ix_jobs_owner_id", "owner_id", "id"),
    Index("ix_jobs_owner_status", "owner_id", "status", "id"),
    Index("ix_jobs_status_completed", "status", "completed_at"),  # the retention sweep's lookup
    Index(
        "ux_jobs_idempotency",
        "owner_id",
        "idempotency_key",
        unique=True,
        sqlite_where=text("idempotency_key IS NOT NULL"),
        postgresql_where=text("idempotency_key IS NOT NULL"),
    ),
    Index(
        "ix_jobs_due",
        "next_run_at",
        sqlite_where=text("next_run_at IS NOT NULL"),
        postgresql_where=text("next_run_at IS NOT NULL"),
    ),
    Index(  # the worker claims due polls apart from due submits
        "ix_jobs_status_due",
        "status",
        "next_run_at",
        sqlite_where=text("next_run_at IS NOT NULL"),
        postgresql_where=text("next_run_at IS NOT NULL"),
    ),
    Index(  # fair claims: each owner's oldest queued job per provider, found by skipping from owner to owner
        "ix_jobs_queue",
        "provider",
        "owner_id",
        "next_run_at",
        "id",
        sqlite_where=text("status = 'queued'"),
        postgresql_where=text("status = 'queued'"),
    ),
    Index(  # the built-in renders each owner runs now (leased), for the per-key limit
        "ix_jobs_renders",
        "owner_id",
        sqlite_where=text("provider = 'vidgate' AND lease_until IS NOT NULL"),
        postgresql_where=text("provider = 'vidgate' AND lease_until IS NOT NULL"),
    ),
)

# Object keys recorded before their bytes are written, so nothing in the store is ever unowned.
pending_objects = Table(
    "pending_objects",
    metadata,
    Column("key", Text, primary_key=True),
    Column("job_id", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

# Objects whose job no longer owns them (deleted, or expired by retention), recorded in the same
# transaction that disowns them and kept until the store confirms their removal, so an unreachable
# store delays the removal instead of losing it.
pending_deletions = Table(
    "pending_deletions",
    metadata,
    Column("key", Text, primary_key=True),
    Column("job_id", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", BigInteger, nullable=False),
    Column("last_error", Text),
    Index("ix_pending_deletions_due", "next_attempt_at"),
)

# Every stored output by its asset id, for the owner's later creates that name one (``asset_id``);
# written when the outputs are stored, deleted with the job.
assets = Table(
    "assets",
    metadata,
    Column("id", Text, primary_key=True),
    Column("owner_id", Text, nullable=False),
    Column("job_id", Text, nullable=False),
    Column("output_index", Integer, nullable=False),
    Column("key", Text, nullable=False),
    Column("mime_type", Text, nullable=False),
    Column("sha256", Text, nullable=False),
    Column("bytes", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_assets_job", "job_id"),
)

# Uploads (``POST /v1/files``), the owner's own until they expire: what a probe of the bytes found,
# where they are kept (``uploads/<file id>/…``), and when the retention sweep removes them.
files = Table(
    "files",
    metadata,
    Column("id", Text, primary_key=True),
    Column("owner_id", Text, nullable=False),
    Column("key", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("mime_type", Text, nullable=False),
    Column("bytes", BigInteger, nullable=False),
    Column("sha256", Text, nullable=False),
    Column("width", Integer),
    Column("height", Integer),
    Column("duration_ms", BigInteger),
    Column("purpose", Text),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Index("ix_files_owner", "owner_id", "id"),
    Index("ix_files_expires", "expires_at"),
)

ledger = Table(
    "ledger",
    metadata,
    Column("id", Text, primary_key=True),
    Column("owner_id", Text, nullable=False),
    Column("job_id", Text),
    Column("kind", Text, nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("model", Text),
    Column("created_at", BigInteger, nullable=False),
    Column("memo", Text),
    Index("ix_ledger_owner", "owner_id", "created_at"),
    Index(
        "ux_ledger_job_kind",
        "job_id",
        "kind",
        unique=True,
        sqlite_where=text("job_id IS NOT NULL"),
        postgresql_where=text("job_id IS NOT NULL"),
    ),
)

events = Table(
    "events",
    metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("id", Text, nullable=False, unique=True),
    Column("job_id", Text, nullable=False),
    Column("owner_id", Text, nullable=False),
    Column("type", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("data", Text, nullable=False),
    Index("ix_events_job", "job_id", "seq"),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", Text, primary_key=True),
    Column("event_id", Text, nullable=False),
    Column("job_id", Text, nullable=False),
    Column("owner_id", Text, nullable=False),
    Column("url", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", BigInteger),
    Column("lease_until", BigInteger),
    Column("last_status_code", Integer),
    Column("last_error", Text),
    Column("log", Text),
    Column("created_at", BigInteger, nullable=False),
    Column("delivered_at", BigInteger),
    Index("ix_webhook_job", "job_id", "created_at"),
    Index("ux_webhook_event", "event_id", unique=True),
    Index(
        "ix_webhook_due",
        "next_attempt_at",
        sqlite_where=text("next_attempt_at IS NOT NULL"),
        postgresql_where=text("next_attempt_at IS NOT NULL"),
    ),
)

# Receivers registered once per key; jobs name one by id. Secrets are sealed (``SecretBox``, bound to
# the endpoint's id); the previous one keeps signing beside the new one until ``previous_until``.
webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", Text, primary_key=True),
    Column("owner_id", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("url", Text, nullable=False),
    Column("events", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("secret", Text, nullable=False),
    Column("previous_secret", Text),
    Column("previous_until", BigInteger),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("deleted_at", BigInteger),
    Index("ix_webhook_endpoints_owner", "owner_id", "id"),
)

model_stats = Table(
    "model_stats",
    metadata,
    Column("model", Text, primary_key=True),
    Column("mean_seconds", Integer, nullable=False),
    Column("samples", Integer, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

# Each provider's health as the workers saw it (written on a change, not per call), read by every
# process: the models listing, and routing in every worker (providers/health.py).
provider_health = Table(
    "provider_health",
    metadata,
    Column("provider", Text, primary_key=True),
    Column("state", Text, nullable=False),
    Column("failures", Integer, nullable=False, server_default="0"),
    Column("last_error", Text),  # the error's class and status code, never its message or body
    Column("last_success_at", BigInteger),
    Column("last_failure_at", BigInteger),
    Column("open_until", BigInteger, nullable=False, server_default="0"),
    Column("updated_at", BigInteger, nullable=False),
)

# One token bucket per API key, taken from in one statement by every API process on PostgreSQL
# (billing/shared_limits.py); UNLOGGED there: a bucket lost in a crash just starts full.
rate_buckets = Table(
    "rate_buckets",
    metadata,
    Column("key_id", Text, primary_key=True),
    Column("tokens", Float, nullable=False),
    Column("stamp", BigInteger, nullable=False),
    Column("taken", SmallInteger, nullable=False, server_default="0"),
)
