"""Moving orders through their states."""

import logging
from functools import partial

from django.contrib.gis.db.models.functions import Distance
from django.db import Error, connection, transaction
from django.db.models import F, OuterRef, Subquery
from django.utils import timezone

from events.models import EventType
from events.services import EVENT_INSERT_SQL, event_record
from geomarket.accounts.roles import is_operator
from geomarket.answer_cache import Namespace, versions_bump
from geomarket.errors import Conflict, DomainError, NotFound
from geomarket.hooks import hook_call
from inventory.services import stock_return
from merchants.models import Address
from merchants.services import merchant_prep_times_learn, slot_release
from orders.handover import MAX_FAILURES, handover_code_hash_new, handover_code_matches
from orders.models import FailureReason, Order, OrderItem, OrderStatus, OrderStatusChange
from orders.selectors import PREP_TIME_SAMPLES_SQL

logger = logging.getLogger(__name__)


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


# The statuses an order takes only with a reason, one of `FailureReason`.
NEEDS_REASON = frozenset({OrderStatus.FAILED})


def _reason_checked(*, to_status: str, reason: str) -> None:
    """A failed delivery says why, as one of `FailureReason` (400 otherwise): checked
    before any lock, as the body's other fields are."""
    if to_status in NEEDS_REASON and reason not in FailureReason.values:
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


class HandoverCodeMismatch(Conflict):
    code = "handover_code_mismatch"
    default_message = "The handover code is missing or wrong."


class HandoverLocked(Conflict):
    code = "handover_locked"
    default_message = (
        f"{MAX_FAILURES} wrong handover codes were given: only an operator may deliver"
        " this order now."
    )


def order_transition(
    *, order_id: int, actor, to_status: str, reason: str = "", handover_code: str = ""
) -> Order:
    """Move an order to `to_status` if the contract allows it for this actor, else 409.

    The order row is locked first, so two concurrent transitions cannot both start from
    the same state; cancelling, and returning a failed delivery, put the stock back and
    free the order's delivery slot in the same transaction (after the stock, as
    placement books it). `failed` takes its `reason` from `FailureReason` (400 else).

    An order given a handover code at pickup is delivered only with that code (operators
    need none). A wrong code is counted under the same row lock and refused with 409;
    the count commits with the transaction, and the refusal is raised only after it, so
    the tries add up although each request fails (a caller's own enclosing transaction
    keeps or drops the count with the rest of its work).
    """
    _reason_checked(to_status=to_status, reason=reason)
    with transaction.atomic():
        order, refusal = _order_transition_locked(
            order_id=order_id,
            actor=actor,
            to_status=to_status,
            reason=reason,
            handover_code=handover_code,
        )
    if refusal is not None:
        raise refusal
    return order


def _handover_refusal(*, order: Order, handover_code: str) -> Conflict | None:
    """None when `handover_code` is the locked order's code; else the refusal, a wrong
    code counted first. A missing code is refused but not counted: it guesses nothing."""
    if order.handover_failures >= MAX_FAILURES:
        return HandoverLocked()
    if not handover_code:
        return HandoverCodeMismatch("This order is delivered only with its handover code.")
    if handover_code_matches(
        order_id=order.pk, code_hash=order.handover_code_hash, code=handover_code
    ):
        return None
    Order.objects.filter(pk=order.pk).update(handover_failures=F("handover_failures") + 1)
    return HandoverCodeMismatch()


def _delivered_where(*, order_id: int) -> None:
    """Record where the order's courier is now as where it was delivered, with the
    geodesic distance (geography, on the spheroid) from the delivery point; both stay
    NULL when it has no courier or the courier no point.

    The courier's point is read through the order's own relation, in this statement:
    orders sits below delivery in the import layers and imports none of it, as
    `order_roles_of` reads the courier's user."""
    courier = Order._meta.get_field("courier").related_model
    point = Subquery(courier.objects.filter(pk=OuterRef("courier_id")).values("location")[:1])
    address = Subquery(
        Address.objects.filter(pk=OuterRef("delivery_address_id")).values("location")[:1]
    )
    Order.objects.filter(pk=order_id).update(
        delivered_location=point, delivered_distance_m=Distance(point, address)
    )


def _prep_time_first_learned(*, merchant_id: int) -> None:
    """Once an order of a merchant that has learned no preparation time is ready: learn
    it, if this order made its samples enough. The hourly refresh does the same work
    later, so a failure here is only logged: the order's change has committed."""
    try:
        merchant_prep_times_learn(samples_sql=PREP_TIME_SAMPLES_SQL, first_of=merchant_id)
    # Any of the database's errors: an InterfaceError (a closed connection) is not a
    # DatabaseError, and would reach the client as a 500 after the order committed.
    except Error:
        logger.warning("learning merchant %s's preparation time failed", merchant_id, exc_info=True)


def _order_transition_locked(
    *, order_id: int, actor, to_status: str, reason: str, handover_code: str
) -> tuple[Order, Conflict | None]:
    """`order_transition`'s work in its transaction: the order, and the refusal to raise
    once the transaction has committed what it must keep (a wrong handover code)."""
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
    # The code is asked of the orders that were given one at pickup, whatever the
    # merchant's setting says now.
    if to_status == OrderStatus.DELIVERED and order.handover_code_hash and "operator" not in roles:
        refusal = _handover_refusal(order=order, handover_code=handover_code)
        if refusal is not None:
            return order, refusal
    from_status = order.status
    order.status = to_status
    update_fields = ["status", "updated_at"]
    if to_status == OrderStatus.PICKED_UP and order.merchant.require_handover_code:
        order.handover_code_hash = handover_code_hash_new(order_id=order.pk)
        update_fields.append("handover_code_hash")
    if to_status == OrderStatus.DELIVERED:
        order.delivered_at = timezone.now()
        update_fields.append("delivered_at")
    if to_status == OrderStatus.FAILED:
        order.failure_reason = reason
        update_fields.append("failure_reason")
    order.save(update_fields=update_fields)
    if to_status == OrderStatus.DELIVERED:
        _delivered_where(order_id=order.pk)
    if to_status in GIVING_BACK:
        stock_return(lines=OrderItem.objects.filter(order_id=order.pk))
        if order.slot_starts_at is not None:
            slot_release(
                merchant_id=order.merchant_id,
                starts_at=order.slot_starts_at,
                ends_at=order.slot_ends_at,
            )
        versions_bump(Namespace.CATALOG)
    OrderStatusChange.objects.create(
        order=order, from_status=from_status, to_status=to_status, actor=actor, reason=reason
    )
    # After the status change: analytics dates a failure by it.
    hook_call("order_transitioned", order=order, from_status=from_status, to_status=to_status)
    if to_status == OrderStatus.READY and order.merchant.learned_prep_time_s is None:
        transaction.on_commit(partial(_prep_time_first_learned, merchant_id=order.merchant_id))
    event_record(
        type=EventType.ORDER_STATUS_CHANGED,
        merchant_id=order.merchant_id,
        order_id=order.pk,
        data={"from_status": from_status, "to_status": to_status, "reason": reason},
    )
    return order, None


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
