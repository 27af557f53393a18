"""Moving orders through their states."""

from django.db import connection, transaction
from django.utils import timezone

from events.models import EventType
from events.services import EVENT_INSERT_SQL, event_record
from geomarket.accounts.roles import is_operator
from geomarket.answer_cache import Namespace, versions_bump
from geomarket.errors import Conflict, DomainError, NotFound
from geomarket.hooks import hook_call
from inventory.services import stock_return
from merchants.services import slot_release
from orders.models import FailureReason, Order, OrderItem, OrderStatus, OrderStatusChange


class TransitionNotAllowed(Conflict):
    code = "invalid_transition"
    default_message = "This status change is not allowed."


# Transitions: (from, to) -> the roles allowed to make it. Operators may make any of them.
TRANSITIONS: dict[tuple[str, str], frozenset[str]] = {
    (OrderStatus.CONFIRMED, OrderStatus.PREPARING): frozenset({"owner"}),
    (OrderStatus.PREPARING, OrderStatus.READY): frozenset({"owner"}),
    (OrderStatus.READY, OrderStatus.PICKED_UP): frozenset({"courier"}),
    (OrderStatus.PICKED_UP, OrderStatus.DELIVERED): frozenset({"courier"}),
    (OrderStatus.CONFIRMED, OrderStatus.CANCELLED): frozenset({"customer", "owner"}),
    (OrderStatus.PREPARING, OrderStatus.CANCELLED): frozenset({"owner"}),
    (OrderStatus.PICKED_UP, OrderStatus.FAILED): frozenset({"courier"}),
    (OrderStatus.FAILED, OrderStatus.RETURNED): frozenset({"owner"}),
}

# The transitions whose order gives back its stock and its delivery slot: nothing of it
# was or will be delivered.
GIVING_BACK = frozenset({OrderStatus.CANCELLED, OrderStatus.RETURNED})


def _reason_checked(*, to_status: str, reason: str) -> None:
    """A failed delivery says why, as one of `FailureReason` (400 otherwise): checked
    before any lock, as the body's other fields are."""
    if to_status == OrderStatus.FAILED and reason not in FailureReason.values:
        raise DomainError(
            f"A failed delivery needs a reason, one of: {', '.join(FailureReason.values)}.",
            field="reason",
        )


def order_roles_of(*, order: Order, user) -> set[str]:
    """The roles `user` holds towards this order."""
    roles = set()
    if order.buyer_id == user.pk:
        roles.add("customer")
    if order.merchant.owner_id == user.pk:
        roles.add("owner")
    courier_user_id = order_courier_user_id(order)
    if courier_user_id is not None and courier_user_id == user.pk:
        roles.add("courier")
    if is_operator(user):
        roles.add("operator")
    return roles


def order_courier_user_id(order: Order) -> int | None:
    return order.courier.user_id if order.courier_id is not None else None


@transaction.atomic
def order_transition(*, order_id: int, actor, to_status: str, reason: str = "") -> Order:
    """Move an order to `to_status` if the contract allows it for this actor, else 409.

    The order row is locked first, so two concurrent transitions cannot both start from
    the same state; cancelling, and returning a failed delivery, put the stock back and
    free the order's delivery slot in the same transaction (after the stock, as
    placement books it). `failed` takes its `reason` from `FailureReason` (400 else).
    """
    _reason_checked(to_status=to_status, reason=reason)
    order = (
        # No join to the courier: when an assignment commits while this waits for the lock,
        # PostgreSQL rechecks the order row but not a joined courier row.
        Order.objects.select_for_update(of=("self",))
        .select_related("merchant")
        .filter(pk=order_id)
        .first()
    )
    if order is None:
        raise NotFound()
    allowed_roles = TRANSITIONS.get((order.status, to_status))
    roles = order_roles_of(order=order, user=actor)
    if allowed_roles is None:
        raise TransitionNotAllowed(f"An order that is {order.status} cannot become {to_status}.")
    if not (roles & allowed_roles or "operator" in roles):
        raise TransitionNotAllowed(f"You may not move this order to {to_status}.")
    from_status = order.status
    order.status = to_status
    update_fields = ["status", "updated_at"]
    if to_status == OrderStatus.DELIVERED:
        order.delivered_at = timezone.now()
        update_fields.append("delivered_at")
    if to_status == OrderStatus.FAILED:
        order.failure_reason = reason
        update_fields.append("failure_reason")
    order.save(update_fields=update_fields)
    if to_status in GIVING_BACK:
        stock_return(lines=OrderItem.objects.filter(order_id=order.pk))
        if order.slot_starts_at is not None:
            slot_release(merchant_id=order.merchant_id, starts_at=order.slot_starts_at)
        versions_bump(Namespace.CATALOG)
    OrderStatusChange.objects.create(
        order=order, from_status=from_status, to_status=to_status, actor=actor, reason=reason
    )
    # After the status change: analytics dates a failure by it.
    hook_call("order_transitioned", order=order, from_status=from_status, to_status=to_status)
    event_record(
        type=EventType.ORDER_STATUS_CHANGED,
        merchant_id=order.merchant_id,
        order_id=order.pk,
        data={"from_status": from_status, "to_status": to_status, "reason": reason},
    )
    return order


_COURIER_SET_SQL = """
UPDATE orders_order o SET courier_id = a.courier_id
FROM unnest(%s::bigint[], %s::bigint[]) AS a(order_id, courier_id)
WHERE o.id = a.order_id
"""
# An assignment as it happens: the orders' times move, and each gets its event.
_COURIER_ASSIGN_SQL = f"""
WITH assigned AS (
    UPDATE orders_order o SET courier_id = a.courier_id, updated_at = now()
    FROM unnest(%s::bigint[], %s::bigint[]) AS a(order_id, courier_id)
    WHERE o.id = a.order_id
    RETURNING o.id, o.merchant_id, o.courier_id
)
{EVENT_INSERT_SQL}
SELECT %s, now(), merchant_id, id, jsonb_build_object('courier_id', courier_id)
FROM assigned
"""  # noqa: S608 - only a fixed fragment is interpolated


# No savepoint: inside the caller's transaction (the assignment's, holding the orders'
# locks) a savepoint would cost two round trips on a benchmarked path.
@transaction.atomic(savepoint=False)
def orders_courier_set(
    *, assignments: list[tuple[int, int]], touch_updated_at: bool = True
) -> None:
    """Give each order of `assignments`, `(order_id, courier_id)` pairs, its courier, in
    one statement, with an `order.assigned` event each. `touch_updated_at=False` keeps the
    orders' times and records no events, for orders loaded with their history (the demo
    seeding): that is not news to anyone."""
    ids = [[order for order, _ in assignments], [courier for _, courier in assignments]]
    with connection.cursor() as cursor:
        if touch_updated_at:
            cursor.execute(_COURIER_ASSIGN_SQL, [*ids, EventType.ORDER_ASSIGNED.value])
        else:
            cursor.execute(_COURIER_SET_SQL, ids)
