"""An order on its way, as its customer, merchant, courier and operators see it."""

from dataclasses import dataclass
from datetime import datetime

from django.contrib.gis.db.models.functions import Distance
from django.db.models import QuerySet

from delivery.eta import order_eta_seconds
from orders.models import Order, OrderStatus
from orders.selectors import orders_visible_to
from orders.services.transitions import order_roles_of

# Who may see where an order's courier is, by the roles the caller holds towards the
# order (`order_roles_of`): the statuses in which each role sees it, None for always.
# The one statement of the rule (API.md, "Live delivery"): the tracking answer and the
# stream ask `courier_location_visible`, and its test walks every role and status.
_COURIER_VISIBLE_WHILE: dict[str, frozenset[str] | None] = {
    "customer": frozenset({OrderStatus.PICKED_UP}),
    "owner": frozenset({OrderStatus.READY, OrderStatus.PICKED_UP}),
    # The order's own courier.
    "courier": None,
    "operator": None,
}


def courier_location_visible(*, roles: set[str], status: str) -> bool:
    """Whether a caller holding `roles` towards an order in `status` may see where its
    courier is. Nobody else ever does."""
    for role in roles:
        if role not in _COURIER_VISIBLE_WHILE:
            continue
        statuses = _COURIER_VISIBLE_WHILE[role]
        if statuses is None or status in statuses:
            return True
    return False


@dataclass(frozen=True)
class Tracking:
    status: str
    # The courier, or None when there is none or the caller may not see it.
    courier: object | None
    eta_s: int | None
    updated_at: datetime


def _eta_seconds(order: Order) -> int | None:
    courier = order.courier
    if courier is None or courier.location is None:
        return order_eta_seconds(status=order.status, merchant_to_point_m=order.merchant_to_point.m)
    return order_eta_seconds(
        status=order.status,
        merchant_to_point_m=order.merchant_to_point.m,
        vehicle=courier.vehicle,
        courier_to_merchant_m=order.courier_to_merchant.m,
        courier_to_point_m=order.courier_to_point.m,
    )


def _tracked_orders(*, user, order_id: int) -> QuerySet[Order]:
    """The order, when `user` may track it (its customer, owner, courier; operators)."""
    return orders_visible_to(user=user).filter(pk=order_id).select_related("merchant", "courier")


def order_stream_roles(*, user, order_id: int) -> set[str] | None:
    """The roles `user` holds towards the order, for its live stream (who may track it may
    follow it); None when the order is not theirs to see."""
    order = _tracked_orders(user=user, order_id=order_id).first()
    return None if order is None else order_roles_of(order=order, user=user)


def order_tracking(*, user, order_id: int) -> Tracking | None:
    """The order's tracking as `user` may see it; None when the order is not theirs to
    see. Distances are PostGIS's, on the spheroid, in the one query that reads the order."""
    order = (
        _tracked_orders(user=user, order_id=order_id)
        .annotate(
            merchant_to_point=Distance("merchant__location", "delivery_address__location"),
            courier_to_merchant=Distance("courier__location", "merchant__location"),
            courier_to_point=Distance("courier__location", "delivery_address__location"),
        )
        .first()
    )
    if order is None:
        return None
    visible = order.courier_id is not None and courier_location_visible(
        roles=order_roles_of(order=order, user=user), status=order.status
    )
    return Tracking(
        status=order.status,
        courier=order.courier if visible else None,
        eta_s=_eta_seconds(order),
        updated_at=order.updated_at,
    )
