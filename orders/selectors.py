from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from types import SimpleNamespace

from django.contrib.postgres.aggregates import JSONBAgg
from django.db.models import (
    Count,
    F,
    FloatField,
    Func,
    JSONField,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Sum,
    TextField,
)
from django.db.models.functions import Cast

from geomarket.accounts.roles import is_operator
from geomarket.api.pagination import CountedPage, queryset_page
from geomarket.sql import fetch_all
from merchants.selectors import ADDRESS_LOCATIONS_SQL, MERCHANT_LOCATIONS_SQL
from orders.models import (
    ACTIVE_DELIVERY_STATUSES,
    REVENUE_STATUSES,
    WAITING_STATUSES,
    Order,
    OrderItem,
    OrderStatus,
    OrderStatusChange,
)


def _own_profile_id(relation: str, user_field: str, user) -> Subquery:
    """The id of the user's own profile (its `user_field` is the user, one-to-one) that
    the order's `relation` points at, a merchant or a courier; NULL when there is none."""
    profile = Order._meta.get_field(relation).related_model
    return Subquery(profile.objects.filter(**{user_field: user}).values("pk")[:1])


def orders_visible_to(*, user) -> QuerySet[Order]:
    """Customers see their own orders, owners their merchant's, couriers those assigned
    to them, operators all; one user may hold several of these roles.

    The merchant and courier are compared by id, each looked up once: a condition on a
    joined row's owner would join every order before filtering, where `buyer_id = u OR
    merchant_id = m OR courier_id = c` reads only the user's orders through three indexes.
    """
    if is_operator(user):
        return Order.objects.all()
    return Order.objects.filter(
        Q(buyer=user)
        | Q(merchant_id=_own_profile_id("merchant", "owner", user))
        | Q(courier_id=_own_profile_id("courier", "user", user))
    )


# An order's lines, prefetched as a plain list (`order.lines`): prefetched into the
# `items` manager, Django builds a queryset per order to hold them, a third of the CPU of
# a page of twenty orders.
LINES = Prefetch("items", to_attr="lines")


def _with_details(orders: QuerySet[Order]) -> QuerySet[Order]:
    return orders.select_related("merchant", "delivery_address").prefetch_related(LINES)


def order_list(
    *,
    user,
    status: str | None = None,
    merchant_id: int | None = None,
    created_after=None,
    created_before=None,
) -> QuerySet[Order]:
    orders = orders_visible_to(user=user)
    if status:
        orders = orders.filter(status=status)
    if merchant_id is not None:
        orders = orders.filter(merchant_id=merchant_id)
    if created_after is not None:
        orders = orders.filter(created_at__gte=created_after)
    if created_before is not None:
        orders = orders.filter(created_at__lte=created_before)
    # Paged as plain rows (`order_page`): nothing joined or prefetched for models.
    return orders.order_by("-created_at", "-id")


# How far the orders list counts exactly; past it the count is the planner's estimate
# (at least one more), so an operator's list never counts millions of orders a request.
ORDER_COUNT_BOUND = 1000


# What the order answer reads (`orders.serializers.order_payload`). A page of orders built
# as models, each with its merchant, address and lines, cost several times its rendering.
_ORDER_FIELDS = (
    "status",
    "subtotal",
    "delivery_fee",
    "total",
    "rejection_reason",
    "shortages",
    "courier_id",
    "created_at",
    "updated_at",
    "delivered_at",
    "slot_starts_at",
    "slot_ends_at",
)
_ADDRESS_FIELDS = ("line1", "line2", "city", "postal_code", "country")


def _coordinate(name: str) -> Func:
    # The address point's longitude (ST_X) or latitude (ST_Y), the floats its GeoJSON
    # holds: twenty points parsed into GEOS objects cost more than the rest of the page.
    location = F("delivery_address__location")
    return Func(
        location,
        function=name,
        template="%(function)s(%(expressions)s::geometry)",
        output_field=FloatField(),
    )


# Each order's lines as one JSON array of [product_id, title, unit_price, quantity,
# line_total] (money as text, read back as Decimal), in the order's own row: a second
# query per page, and a model per line, cost more than the page's SQL.
_LINES_JSON = Subquery(
    OrderItem.objects.filter(order_id=OuterRef("pk"))
    .order_by()
    .values("order_id")
    .annotate(
        lines=JSONBAgg(
            Func(
                "product_id",
                "title",
                Cast("unit_price", TextField()),
                "quantity",
                Cast("line_total", TextField()),
                function="json_build_array",
            ),
            order_by="id",
        )
    )
    .values("lines"),
    output_field=JSONField(),
)


def _line(product_id, title, unit_price, quantity, line_total) -> SimpleNamespace:
    return SimpleNamespace(
        product_id=product_id,
        title=title,
        unit_price=Decimal(unit_price),
        quantity=quantity,
        line_total=Decimal(line_total),
    )


def order_page(
    orders: QuerySet[Order], *, offset: int, limit: int, bounded_count: bool = False
) -> CountedPage:
    """Rows `offset` to `offset + limit` of `orders`, in their order, as plain objects
    holding what the order answer reads (`pk`, the fields, `merchant`, `delivery_address`
    and `lines`, as the models name them), and the count of all of them, in one
    statement. With `bounded_count`, the count is exact up to `ORDER_COUNT_BOUND` and the
    planner's estimate past it (`count_is_estimate`)."""
    page = queryset_page(
        orders.values(
            "id",
            *_ORDER_FIELDS,
            "merchant__name",
            *(f"delivery_address__{name}" for name in _ADDRESS_FIELDS),
            merchant_pk=F("merchant_id"),
            lng=_coordinate("ST_X"),
            lat=_coordinate("ST_Y"),
            line_values=_LINES_JSON,
        ),
        offset=offset,
        limit=limit,
        count_bound=ORDER_COUNT_BOUND if bounded_count else None,
    )
    objects = [
        SimpleNamespace(
            pk=row["id"],
            **{name: row[name] for name in _ORDER_FIELDS},
            merchant=SimpleNamespace(pk=row["merchant_pk"], name=row["merchant__name"]),
            delivery_address=SimpleNamespace(
                **{name: row[f"delivery_address__{name}"] for name in _ADDRESS_FIELDS},
                location=SimpleNamespace(geom_type="Point", coords=(row["lng"], row["lat"])),
            ),
            # An order has lines; none would read as NULL.
            lines=[_line(*values) for values in row["line_values"] or ()],
        )
        for row in page.rows
    ]
    return replace(page, rows=objects)


def order_detail(*, user, order_id: int) -> Order | None:
    history = Prefetch("history", queryset=OrderStatusChange.objects.order_by("created_at", "id"))
    return (
        _with_details(orders_visible_to(user=user))
        .prefetch_related(history)
        .filter(pk=order_id)
        .first()
    )


def merchant_order_list(*, merchant_id: int) -> QuerySet:
    return (
        Order.objects.filter(merchant_id=merchant_id)
        .annotate(total_items=Sum("items__quantity"))
        .order_by("-created_at", "-id")
        .values("id", "status", "created_at", "total_items", "total")
    )


def order_stats(*, merchant_id: int | None) -> dict:
    """Orders by status and revenue, of one merchant or, from the tally, of all."""
    if merchant_id is None:
        tally = fetch_all(
            "SELECT status, sum(orders), sum(total) FROM orders_orderstatustally GROUP BY status",
            {},
        )
        counts = {status: int(n) for status, n, _ in tally if n}
        revenue = sum(
            (total for status, _, total in tally if status in REVENUE_STATUSES), Decimal("0.00")
        )
    else:
        orders = Order.objects.filter(merchant_id=merchant_id)
        counts = dict(orders.values_list("status").annotate(n=Count("id")).order_by())
        revenue = orders.filter(status__in=REVENUE_STATUSES).aggregate(total=Sum("total"))["total"]
    return {
        "by_status": {status.value: counts.get(status.value, 0) for status in OrderStatus},
        "orders": sum(counts.values()),
        "revenue": revenue or Decimal("0.00"),
    }


# Reads of orders for delivery's assignment and courier statuses. Orders owns its table,
# so the SQL naming it lives here; delivery runs these functions or composes these
# fragments into its own statements, in the same round trips as before.

WAITING_ORDERS_LOCK_SQL = """
SELECT id, created_at FROM orders_order
WHERE courier_id IS NULL AND status = ANY(%(waiting)s)
  AND (%(ids)s::bigint[] IS NULL OR id = ANY(%(ids)s::bigint[]))
ORDER BY id
LIMIT %(cap)s
FOR UPDATE SKIP LOCKED
"""


def orders_waiting_lock(*, order_ids: list[int] | None, limit: int) -> list[tuple[int, datetime]]:
    """Lock up to `limit` waiting orders (`WAITING_STATUSES`, no courier), of `order_ids`
    when given: `(id, created_at)` rows, locked by id with SKIP LOCKED, so concurrent
    callers share out the orders and never take one twice. Call it inside a transaction."""
    return fetch_all(
        WAITING_ORDERS_LOCK_SQL,
        {"waiting": list(WAITING_STATUSES), "ids": order_ids, "cap": limit},
    )


# The orders `%(orders)s` with their pickup point, the merchant's location: rows of `id,
# merchant_id, location`, to select from as `FROM ({ORDER_PICKUPS_SQL}) o`.
ORDER_PICKUPS_SQL = f"""
SELECT o.id, m.id AS merchant_id, m.location
FROM orders_order o JOIN ({MERCHANT_LOCATIONS_SQL}) m ON m.id = o.merchant_id
WHERE o.id = ANY(%(orders)s)
"""  # noqa: S608 - only a fixed fragment is interpolated

# The active orders (`%(active)s`) of the courier whose id is the SQL expression
# `{courier}`, with the points a courier's geofences test: `id, merchant_id, status,
# pickup` (the merchant's point) and `dropoff` (the delivery address's). Format
# `{courier}` in and join it LATERAL.
COURIER_ORDER_POINTS_SQL = f"""
SELECT o.id, o.merchant_id, o.status, m.location AS pickup, a.location AS dropoff
FROM orders_order o
JOIN ({MERCHANT_LOCATIONS_SQL}) m ON m.id = o.merchant_id
JOIN ({ADDRESS_LOCATIONS_SQL}) a ON a.id = o.delivery_address_id
WHERE o.courier_id = {{courier}} AND o.status = ANY(%(active)s)
"""  # noqa: S608 - only fixed fragments are interpolated

# How many active orders (`ACTIVE_DELIVERY_STATUSES`, passed as `%(active)s`) the courier
# whose id is the SQL expression `{courier}` has, as the one column `count`: format
# `{courier}` in and use it as a scalar subquery or a one-row table.
COURIER_ACTIVE_ORDERS_SQL = (
    "SELECT count(*) FROM orders_order o"
    " WHERE o.courier_id = {courier} AND o.status = ANY(%(active)s)"
)


def courier_active_order_counts(*, courier_ids: list[int]) -> dict[int, int]:
    """Each of `courier_ids` with active orders, to its number of them."""
    return dict(
        fetch_all(
            """
            SELECT courier_id, count(*) FROM orders_order
            WHERE courier_id = ANY(%(couriers)s) AND status = ANY(%(active)s)
            GROUP BY courier_id
            """,
            {"couriers": courier_ids, "active": list(ACTIVE_DELIVERY_STATUSES)},
        )
    )
