"""Sending a queued job to a provider, so that exactly one upstream job is made for it.

A create is recorded as ``submitting`` (its idempotency key is the job id) before it is sent, and
its answer decides what comes next:

- accepted: the job belongs to that provider until it ends;
- a definite refusal (an answered 4xx, 5xx or 429, a connection never made): the next candidate;
  when every candidate refused for a passing reason (busy, down), the whole plan again later, with
  backoff, within the job's deadline;
- no answer (a timeout or reset after sending, an unreadable 2xx): ``unknown``. The job may exist
  there, so it is sent nowhere until the provider's ``find`` tells. Found: that is the job's
  upstream job. Surely absent: the plan goes on. Where the upstream offers no lookup, the job stays
  with that provider and is sent to it again, and the attempt says a duplicate there is possible.

A worker that dies mid-submit leaves its ``submitting`` attempt behind; whoever claims the job next
reconciles it the same way before anything is sent again.
"""

from __future__ import annotations

import contextlib
import logging
import time

import httpx
from msgspec import UNSET, UnsetType
from msgspec.structs import replace

from vidgate.gateway import routing
from vidgate.gateway.catalog.catalog import Model
from vidgate.gateway.ids import now_ms
from vidgate.gateway.jobs.records import Attempt, JobRecord, job_error
from vidgate.gateway.jobs.spec import VideoSpec
from vidgate.gateway.jobs.state import TERMINAL
from vidgate.gateway.metrics import observe_upstream
from vidgate.gateway.net import BlockedURL
from vidgate.gateway.providers.base import (
    Accepted,
    JobSpec,
    LocalProvider,
    ProviderError,
    ReferenceImage,
    Rejected,
    RemoteProvider,
    UnknownOutcome,
    is_local,
)
from vidgate.gateway.render.image import ImageDecodeError
from vidgate.gateway.secret import Secret
from vidgate.gateway.storage.db import Q
from vidgate.gateway.worker.context import WorkerContext
from vidgate.gateway.worker.jobspec import fetch_job_references, job_spec, own_keys
from vidgate.gateway.worker.leases import MAX_RETRY_SECONDS, retry_delay
from vidgate.gateway.worker.local import LocalRender

log = logging.getLogger("vidgate.worker")

# A lost create is looked for this long after, and later each time the answer is "cannot tell":
# a list-based lookup needs the upstream's list to catch up with the create.
RECONCILE_DELAY_SECONDS = 3.0
# Refusals that say a provider cannot take this job at all: trying the plan again cannot help.
_NOT_PASSING = frozenset({"unsupported_parameter", "unsupported_input", "provider_misconfigured", "invalid_reference"})
_HELD = Q("SELECT id FROM jobs WHERE provider = :provider AND native_id = :native AND id <> :id LIMIT 1")
_STATUS = Q("SELECT status FROM jobs WHERE id = :id")


def passing(exc: Rejected) -> bool:
    """Whether a refusal may pass: the upstream was busy or down (429, 5xx, no connection), not refusing the job."""
    if not exc.retryable or exc.code in _NOT_PASSING:
        return False
    return exc.status_code is None or exc.status_code in (408, 409, 425, 429) or exc.status_code >= 500


def open_create(attempts: list[Attempt]) -> Attempt | None:
    """The last create while what became of it is still to be found out."""
    last = attempts[-1] if attempts else None
    if last is None:
        return None
    if last.outcome in ("submitting", "pending"):  # "pending": written before "submitting" was
        return last
    if last.outcome == "unknown" and last.lookup is not False:
        return last
    return None


def pinned(attempts: list[Attempt]) -> str | None:
    """A provider that may hold the job with no way to tell: the job is never sent anywhere else."""
    return next((a.provider for a in attempts if a.outcome == "unknown" and a.lookup is False), None)


def _now_s() -> int:
    return now_ms() // 1000


def _text(value: str | UnsetType) -> str:
    return "" if value is UNSET else value


class Submitter:
    """One worker's queued steps: find out what became of an open create, then submit.

    The attempts are the job's, last one last; an open create is always the last, and each step
    replaces it with what became of it before the list is written back.
    """

    def __init__(self, ctx: WorkerContext, local: LocalRender) -> None:
        self.ctx = ctx
        self.local = local

    async def start(self, job: JobRecord) -> None:
        w = self.ctx
        job_id = job.id
        model = w.catalog.by_id[job.model]
        attempts = list(job.attempts or ())
        own = own_keys(job, w.settings.secret_box)
        open_ = open_create(attempts)
        if open_ is not None and (wait := self._settling(open_)) > 0:
            await self._reschedule(job_id, attempts, wait)
            return
        try:
            refs = await fetch_job_references(w, job)
        except (BlockedURL, httpx.HTTPError, ImageDecodeError) as exc:
            if open_ is not None and isinstance(exc, httpx.HTTPError):
                raise  # the job may exist upstream already: a failed step, tried again, not a failed job
            # An image too large to decode is the input's own fault (no retry can fix it); the rest, fetching's.
            code = "input_reference_invalid" if isinstance(exc, ImageDecodeError) else "input_reference_unavailable"
            await w.fail(job_id, job_error(code, f"an input reference could not be used: {exc}"))
            return
        resume: str | None = None
        if open_ is not None:
            if not await self._reconcile(job, model, attempts, refs, own):
                return
            resume = open_.provider
        rejections: list[Rejected] = []
        for cand in self._candidates(job.spec, model, attempts, own, resume):
            provider = w.providers.get(cand.provider, api_key=own.get(cand.provider))
            jobspec = job_spec(job, cand.provider_model, refs, provider=cand.provider)
            if is_local(provider):
                await self._start_local(job, cand, provider, jobspec, attempts)
                return
            refused = await self._submit(job, cand, provider, jobspec, attempts)  # type: ignore[arg-type]
            if refused is None:
                return
            rejections.append(refused)
            if not refused.retryable:
                break
        await self._exhausted(job, attempts, rejections)

    def _settling(self, open_: Attempt) -> float:
        """Seconds until a create cut off mid-send (a crash, a stop) may be looked for: it may still be
        under way upstream until it would have timed out, and a list needs a moment to catch up."""
        if open_.outcome not in ("submitting", "pending"):
            return 0.0  # its answer was lost: it timed out already, and the step that saw it waited
        config = self.ctx.providers.configs.get(open_.provider)
        settle = (config.timeout_seconds if config is not None else 30.0) + RECONCILE_DELAY_SECONDS
        return open_.at + 1 + settle - now_ms() / 1000

    def _candidates(
        self, spec: VideoSpec, model: Model, attempts: list[Attempt], own: dict[str, Secret], resume: str | None
    ) -> list[routing.Candidate]:
        """The providers to try, in order. After a create found not to have been made (``resume``), the
        ones after it in the plan, or it again when it was the last."""
        w = self.ctx
        known = {p.name: routing.Candidate(p.name, p.model, p.alpha) for p in model.providers}
        if (name := pinned(attempts)) is not None:
            return [known[name]] if name in known else []
        available = w.providers.available | frozenset(own)
        plan = list(routing.plan(model, spec, available=available, unhealthy=w.providers.unhealthy()).candidates)
        if resume is None:
            return plan
        names = [c.provider for c in plan]
        rest = plan[names.index(resume) + 1 :] if resume in names else [c for c in plan if c.provider != resume]
        return rest or ([known[resume]] if resume in known else [])

    async def _start_local(
        self,
        job: JobRecord,
        cand: routing.Candidate,
        provider: LocalProvider,
        jobspec: JobSpec,
        attempts: list[Attempt],
    ) -> None:
        w = self.ctx
        attempts.append(Attempt(cand.provider, "accepted", _now_s()))
        started = await w.lifecycle.transition(
            job.id,
            "accepted",
            lease=w.worker_id,
            fields={
                "provider": cand.provider,
                "native_id": job.id,
                "started_at": now_ms(),
                "attempts": attempts,
                "progress_source": "provider",
            },
        )
        if started is not None:
            await self.local.run(started, provider, jobspec)

    async def _submit(
        self,
        job: JobRecord,
        cand: routing.Candidate,
        provider: RemoteProvider,
        jobspec: JobSpec,
        attempts: list[Attempt],
    ) -> Rejected | None:
        """Send one create; the refusal, or None once the step is over (accepted, or a lost answer to find)."""
        w = self.ctx
        job_id = job.id
        # The idempotency key is what the adapter sends, so a lookup by it can find the job.
        attempt = Attempt(cand.provider, "submitting", _now_s(), idempotency_key=job_id)
        attempts.append(attempt)
        # Written before the create leaves, and only while the job is queued and still ours: whoever
        # finds it here after a crash looks for the upstream job before sending anything again.
        if await w.lifecycle.set_fields(job_id, {"attempts": attempts}, lease=w.worker_id, sources=("queued",)) is None:
            log.info("job %s: no longer queued under this worker's lease; not sent", job_id)
            return None
        started = time.perf_counter()
        try:
            accepted = await provider.submit(jobspec)
        except UnknownOutcome as exc:
            observe_upstream(cand.provider, "submit", time.perf_counter() - started, exc)
            w.providers.record(cand.provider, False, exc)
            attempts[-1] = replace(attempt, outcome="unknown", message=exc.message, reason=exc.message)
            log.warning(
                "job %s: the answer to its create at %s was lost (%s); looking for it in %.0f s",
                job_id,
                cand.provider,
                exc.message,
                RECONCILE_DELAY_SECONDS,
            )
            await self._reschedule(job_id, attempts, RECONCILE_DELAY_SECONDS)
            return None
        except Rejected as exc:
            observe_upstream(cand.provider, "submit", time.perf_counter() - started, exc)
            w.providers.record(cand.provider, False, exc)
            code = exc.status_code if exc.status_code else UNSET
            attempts[-1] = Attempt(cand.provider, "rejected", _now_s(), message=exc.message, status_code=code)
            await w.lifecycle.set_fields(job_id, {"attempts": attempts}, lease=w.worker_id)
            return exc
        observe_upstream(cand.provider, "submit", time.perf_counter() - started)
        attempts[-1] = Attempt(cand.provider, "accepted", _now_s(), message=accepted.note or UNSET)
        await self._accepted(job, cand.provider, provider, accepted, attempts)
        return None

    async def _accepted(
        self, job: JobRecord, name: str, provider: RemoteProvider, accepted: Accepted, attempts: list[Attempt]
    ) -> None:
        w = self.ctx
        w.providers.record(name, True)
        config = w.providers.configs.get(name)
        interval = config.poll_interval_seconds if config is not None else 5.0
        done = await w.lifecycle.transition(
            job.id,
            "accepted",
            lease=w.worker_id,
            fields={
                "provider": name,
                "native_id": accepted.native_id,
                "started_at": now_ms(),
                "attempts": attempts,
                "lease_owner": None,
                "lease_until": None,
                "next_run_at": now_ms() + int(interval * 1000),
                "poll_failures": 0,
            },
        )
        if done is not None:
            return
        now = await w.db.fetchone(_STATUS, {"id": job.id})
        if now is not None and now["status"] in TERMINAL:  # ended meanwhile: the upstream job must not run on unpaid
            with contextlib.suppress(ProviderError):
                await provider.cancel(accepted.native_id)
        else:  # the lease lapsed under a slow create: the next claim finds the job upstream again
            log.warning("job %s: accepted by %s as %s after its lease lapsed", job.id, name, accepted.native_id)

    async def _reconcile(
        self,
        job: JobRecord,
        model: Model,
        attempts: list[Attempt],
        refs: tuple[ReferenceImage, ...],
        own: dict[str, Secret],
    ) -> bool:
        """Ask the provider of the open create (the last attempt) whether it made the job. True when it
        surely did not, so the plan goes on (or the provider cannot tell and keeps the job); False once
        the step is over."""
        w = self.ctx
        job_id = job.id
        open_ = attempts[-1]
        name = open_.provider
        reason = _text(open_.reason) or _text(open_.message) or "the gateway stopped before the create was answered"
        ref = next((p for p in model.providers if p.name == name), None)
        provider = w.providers.get(name, api_key=own.get(name)) if ref is not None else None
        if ref is None or provider is None or is_local(provider):
            message = f"not sent again: {name} no longer offers the model"
            attempts[-1] = replace(open_, outcome="rejected", at=_now_s(), message=message)
            return True
        jobspec = job_spec(job, ref.model, refs, provider=name)
        started = time.perf_counter()
        try:
            found = await provider.find(jobspec, since=float(open_.at))  # type: ignore[union-attr]
        except UnknownOutcome as exc:
            observe_upstream(name, "reconcile", time.perf_counter() - started, exc)
            if exc.code == "reconcile_unsupported":
                attempts[-1] = replace(
                    open_,
                    outcome="unknown",
                    lookup=False,
                    message=f"{reason}; {name} offers no lookup, so the job was sent to it again "
                    "and a duplicate there is possible",
                )
                log.warning("job %s: %s offers no lookup; sending the job to it again", job_id, name)
                return True
            await self._retry_reconcile(job, attempts, reason, exc)
            return False
        observe_upstream(name, "reconcile", time.perf_counter() - started)
        if found is None:
            attempts[-1] = replace(open_, outcome="rejected", at=_now_s(), message=f"not created: {reason}")
            log.info("job %s: %s made no job for the lost create; the plan goes on", job_id, name)
            return True
        if await w.db.fetchone(_HELD, {"provider": name, "native": found.native_id, "id": job_id}) is not None:
            # A list match that is another job's upstream job is not ours; that job keeps it.
            taken = UnknownOutcome(f"{name}'s only match is another job's", retryable=True, code="reconcile_ambiguous")
            await self._retry_reconcile(job, attempts, reason, taken)
            return False
        attempts[-1] = Attempt(name, "accepted", _now_s(), message=f"found at {name} after: {reason}")
        log.info("job %s: found at %s as %s after its create answer was lost", job_id, name, found.native_id)
        await self._accepted(job, name, provider, found, attempts)  # type: ignore[arg-type]
        return False

    async def _retry_reconcile(self, job: JobRecord, attempts: list[Attempt], reason: str, exc: ProviderError) -> None:
        """Look again later; when the deadline comes first, fail the job, having sent it nowhere else."""
        w = self.ctx
        open_ = attempts[-1]
        name = open_.provider
        tries = (0 if open_.lookups is UNSET else open_.lookups) + 1
        message = f"{reason}; {exc.message}"
        attempts[-1] = replace(open_, outcome="unknown", reason=reason, lookups=tries, message=message)
        delay = retry_delay(tries, RECONCILE_DELAY_SECONDS)
        if now_ms() + delay * 1000 < job.deadline_at:
            log.warning("job %s: %s (try %d); looking again in %.1f s", job.id, exc.message, tries, delay)
            await self._reschedule(job.id, attempts, delay)
            return
        error = job_error(
            "upstream_outcome_unknown",
            f"could not tell before the deadline whether {name} made the job ({exc.message}); "
            "it was sent to no other provider",
            provider=name,
            attempts=attempts,
        )
        await w.fail(job.id, error, attempts=attempts)

    async def _exhausted(self, job: JobRecord, attempts: list[Attempt], rejections: list[Rejected]) -> None:
        """Every candidate refused: the whole plan again later while a refusal may pass, else failed."""
        w = self.ctx
        last = rejections[-1] if rejections else None
        busy = [e for e in rejections if passing(e)]
        if last is not None and last.retryable and busy:
            rounds = 1 + sum(1 for a in attempts if a.round_end is True)
            delay = retry_delay(rounds, w.settings.step_retry_seconds)
            asked = [e.retry_after for e in busy if e.retry_after is not None]
            if asked:  # the soonest any of them said it may take the job again
                delay = max(delay, min(asked))
            delay = min(delay, MAX_RETRY_SECONDS)
            if now_ms() + delay * 1000 < job.deadline_at:
                attempts[-1] = replace(attempts[-1], round_end=True)
                log.info("job %s: every provider refused it (round %d); again in %.1f s", job.id, rounds, delay)
                await self._reschedule(job.id, attempts, delay)
                return
        if last is not None and not last.retryable:
            error = job_error(
                "upstream_error",
                last.message,
                provider=attempts[-1].provider,
                provider_request_id=last.request_id,
                attempts=attempts,
            )
        else:
            latest = {a.provider: a.outcome if a.message is UNSET else a.message for a in attempts}
            tried = ", ".join(f"{p} ({m})" for p, m in latest.items()) or "none"
            when = " before its deadline" if busy else ""
            error = job_error(
                "no_provider_available", f"no provider accepted the job{when}; tried: {tried}", attempts=attempts
            )
        await w.fail(job.id, error, attempts=attempts)

    async def _reschedule(self, job_id: str, attempts: list[Attempt], delay: float) -> None:
        w = self.ctx
        await w.lifecycle.set_fields(
            job_id,
            {
                "attempts": attempts,
                "lease_owner": None,
                "lease_until": None,
                "next_run_at": now_ms() + int(delay * 1000),
                "poll_failures": 0,
            },
            lease=w.worker_id,
        )
