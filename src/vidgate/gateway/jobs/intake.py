"""The first half of every create, which a quote is in full: validate the body, check what it refers
to, pick the candidate providers and price the hold. One function, so a quote refuses exactly what a
create refuses and holds exactly what it would hold."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import msgspec

from vidgate.errors import NoProviderAvailableError, ValidationError
from vidgate.gateway import routing
from vidgate.gateway.billing import pricing
from vidgate.gateway.catalog.catalog import Catalog, Model
from vidgate.gateway.catalog.validate import validate
from vidgate.gateway.events.webhook_endpoints import resolve_job_webhook
from vidgate.gateway.jobs import assets, files
from vidgate.gateway.jobs.spec import VideoSpec
from vidgate.gateway.providers.registry import Providers
from vidgate.gateway.secret import Secret
from vidgate.gateway.storage.db import Database


@dataclass(frozen=True, slots=True)
class Intake:
    """A body a create would take: its spec (routing narrowed to the owner's own keys), the model,
    the providers to try in order, and the hold in micro-dollars."""

    spec: VideoSpec
    model: Model
    plan: routing.Plan
    amount: int


async def intake(
    db: Database,
    catalog: Catalog,
    providers: Providers,
    owner: str,
    body: bytes,
    *,
    byok: Mapping[str, Secret] | None,
    allow_http: bool,
    byok_fee: int,
) -> Intake:
    """Validate → references → candidates → price; raises the error a create would answer with.

    With ``byok`` (the owner's own provider keys) only those providers are candidates and the hold
    is the gateway's fee alone.
    """
    spec = validate(body, catalog, allow_http=allow_http)
    spec = await resolve_job_webhook(db, owner, spec)
    await assets.check_references(db, owner, spec)
    await files.check_references(db, owner, spec)
    model = catalog.by_id[spec.model]
    await assets.check_durations(db, owner, spec, model)
    available = providers.available
    if byok:
        for name in byok:
            if not providers.byok_capable(name):
                raise ValidationError(f"{name} takes no key of one's own", param="X-Provider-Key")
        asked = tuple(byok) if spec.routing.only is msgspec.UNSET else spec.routing.only
        only = tuple(p for p in asked if p in byok)
        spec = msgspec.structs.replace(spec, routing=msgspec.structs.replace(spec.routing, only=only))
        available = available | frozenset(byok)
    plan = routing.plan(model, spec, available=available, unhealthy=providers.unhealthy())
    if not plan.candidates:
        reasons = "; ".join(f"{p}: {why}" for p, why in plan.skipped) or "no provider serves it"
        raise NoProviderAvailableError(
            f"no provider can run {model.id} now ({reasons})",
            details={"skipped": [{"provider": p, "reason": why} for p, why in plan.skipped]},
        )
    amount = (
        pricing.byok_quote(byok_fee, spec.duration, spec.sample_count)
        if byok
        else pricing.quote(
            model,
            seconds=spec.duration,
            resolution=spec.resolution,
            audio=spec.audio,
            sample_count=spec.sample_count,
            size=spec.size,
            providers=tuple(c.provider for c in plan.candidates),
        )
    )
    return Intake(spec=spec, model=model, plan=plan, amount=amount)
