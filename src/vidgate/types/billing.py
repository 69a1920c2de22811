"""What a job costs: its usage and its billing summary."""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from msgspec import UNSET, Meta, UnsetType

from vidgate.types.base import _Response


class Usage(_Response):
    cost: float
    is_byok: bool = False
    output_video_seconds: float = 0.0


BillingState = Literal["pending", "estimated", "settled", "void"]
ReservationStatus = Literal["held", "settled", "void", "none"]


class Billing(_Response):
    """What the job costs: the reference's billing summary (exact decimal dollar strings and whole
    nano-dollars) with vidgate's own figures in dollars (``held``, ``settled``) alongside.

    ``state``: ``estimated`` while a hold is on (``pending`` when nothing is held), ``settled`` once
    charged, ``void`` when the hold was released uncharged. ``reservation_status`` is the hold's own
    state: ``held``, ``settled``, ``void``, or ``none``. Events stored by older gateways carry an
    older ``state`` spelling (``held``, ``none``) and no reference fields, hence the loose types.
    """

    currency: str
    state: Annotated[str, Meta(extra_json_schema={"enum": list(get_args(BillingState))})]
    held: float
    settled: float
    reservation_id: str | UnsetType = UNSET
    reservation_status: ReservationStatus | UnsetType = UNSET
    billable: bool | UnsetType = UNSET
    charged: bool | UnsetType = UNSET
    estimated_user_cost: str | UnsetType = UNSET
    settled_user_cost: str | UnsetType | None = UNSET
    estimated_nanos: int | UnsetType = UNSET
    reserved_nanos: int | UnsetType = UNSET
    total_nanos: int | UnsetType | None = UNSET
