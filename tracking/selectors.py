"""An order on its way, as its customer, merchant, courier and operators see it."""

import functools
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace

from django.contrib.gis.db.models.functions import Distance
from django.db.models import QuerySet

from delivery.eta import order_eta_seconds
from geomarket.accounts.roles import is_operator
from geomarket.accounts.selectors import Credential, user_active
from geomarket.shapes import coordinates
from geomarket.sql import CompiledQuery, fetch_all
from orders.handover import handover_code_shown
from orders.models import COURIER_VISIBLE_WHILE, Order
from orders.selectors import orders_visible_to, orders_visible_to_id
from orders.services.transitions import order_roles_of


def courier_location_visible(*, roles: set[str], status: str) -> bool:
    """Whether a caller holding `roles` towards an order in `status` may see where its
    courier is (`COURIER_VISIBLE_WHILE`). Nobody else ever does."""
    for role in roles:
        if role not in COURIER_VISIBLE_WHILE:
            continue
        statuses = COURIER_VISIBLE_WHILE[role]
        if statuses is None or status in statuses:
            return True
    return False


@dataclass(frozen=True)
class Tracking:
    status: str
    # The courier, or None when there is none or the caller may not see it.
    courier: "TrackedCourier | None"
    eta_s: int | None
    updated_at: datetime
    # The order's handover code, for its customer alone (`handover_code_shown`).
    handover_code: str | None = None


def _tracked_orders(*, user, order_id: int) -> QuerySet[Order]:
    """The order, when `user` may track it (its customer, owner, courier; operators)."""
    return orders_visible_to(user=user).filter(pk=order_id).select_related("merchant", "courier")


def order_stream_roles(*, user, order_id: int) -> set[str] | None:
    """The roles `user` holds towards the order, for its live stream (who may track it may
    follow it); None when the order is not theirs to see."""
    order = _tracked_orders(user=user, order_id=order_id).first()
    return None if order is None else order_roles_of(order=order, user=user)


def order_stream_roles_now(
    *, user_id: int, order_id: int, credential: Credential
) -> set[str] | None:
    """`order_stream_roles` of the user `user_id` as it stands now, for a stream opened
    earlier on `credential`: None once it may not authenticate (deactivated, deleted, its
    token deleted, its session signed out) or no longer sees the order (a courier
    reassigned, an operator no longer staff)."""
    user = user_active(user_id=user_id, credential=credential)
    return None if user is None else order_stream_roles(user=user, order_id=order_id)


@dataclass(frozen=True)
class TrackedCourier:
    id: int
    name: str
    vehicle: str
    # Its point as (longitude, latitude), or None before its first ping.
    location: tuple[float, float] | None
    location_updated_at: datetime | None


# What the tracking answer reads of the order, its merchant and its courier, with the
# distances its estimate needs (`_TRACKING_DISTANCES`).
_TRACKING_FIELDS = (
    "status",
    "handover_code_hash",
    "updated_at",
    "buyer_id",
    "merchant__owner_id",
    "merchant__learned_prep_time_s",
    "courier_id",
    "courier__user_id",
    "courier__name",
    "courier__vehicle",
    "courier__location_updated_at",
)
_TRACKING_DISTANCES = {
    "merchant_to_point": Distance("merchant__location", "delivery_address__location"),
    "courier_to_merchant": Distance("courier__location", "merchant__location"),
    "courier_to_point": Distance("courier__location", "delivery_address__location"),
}

# The names of the columns the compiled read gives, in order.
_TRACKING_COLUMNS = (*_TRACKING_FIELDS, *_TRACKING_DISTANCES, "longitude", "latitude")

# Stand-ins for the caller and the order in the compiled read (`CompiledQuery`).
_USER_STAND_IN = -7_300_201
_ORDER_STAND_IN = -7_300_202


@functools.cache
def _tracking_compiled(*, operator: bool) -> CompiledQuery:
    # Built and compiled once per kind of caller: the ORM's build of this join with its
    # three distances cost several times the statement's CPU.
    orders = Order.objects.all() if operator else orders_visible_to_id(user_id=_USER_STAND_IN)
    longitude, latitude = coordinates("courier__location")
    rows = orders.filter(pk=_ORDER_STAND_IN).values_list(
        *_TRACKING_FIELDS, *_TRACKING_DISTANCES.values(), longitude, latitude
    )
    slots = {"order": _ORDER_STAND_IN, **({} if operator else {"user": _USER_STAND_IN})}
    return CompiledQuery(rows, slots=slots)


def order_tracking(*, user, order_id: int) -> Tracking | None:
    """The order's tracking as `user` may see it; None when the order is not theirs to
    see. Distances are PostGIS's, on the spheroid, in the one query that reads the order."""
    operator = is_operator(user)
    compiled = _tracking_compiled(operator=operator)
    values = {"order": order_id} if operator else {"order": order_id, "user": user.pk}
    rows = fetch_all(compiled.sql, compiled.params(**values))
    if not rows:
        return None
    row = dict(zip(_TRACKING_COLUMNS, rows[0], strict=True))
    status, courier_id = row["status"], row["courier_id"]
    # What `order_roles_of` reads of an order.
    order = SimpleNamespace(
        buyer_id=row["buyer_id"],
        merchant=SimpleNamespace(owner_id=row["merchant__owner_id"]),
        courier_id=courier_id,
        courier=SimpleNamespace(user_id=row["courier__user_id"]),
    )
    visible = courier_id is not None and courier_location_visible(
        roles=order_roles_of(order=order, user=user), status=status
    )
    # Without a courier's point its distances are NULL: the estimate is the merchant's.
    eta_s = order_eta_seconds(
        status=status,
        merchant_to_point_m=row["merchant_to_point"],
        vehicle=row["courier__vehicle"],
        courier_to_merchant_m=row["courier_to_merchant"],
        courier_to_point_m=row["courier_to_point"],
        learned_prep_time_s=row["merchant__learned_prep_time_s"],
    )
    courier = TrackedCourier(
        id=courier_id,
        name=row["courier__name"],
        vehicle=row["courier__vehicle"],
        location=None if row["longitude"] is None else (row["longitude"], row["latitude"]),
        location_updated_at=row["courier__location_updated_at"],
    )
    return Tracking(
        status=status,
        courier=courier if visible else None,
        eta_s=eta_s,
        updated_at=row["updated_at"],
        handover_code=handover_code_shown(
            viewer_id=user.pk,
            buyer_id=row["buyer_id"],
            status=status,
            order_id=order_id,
            code_hash=row["handover_code_hash"],
        ),
    )
