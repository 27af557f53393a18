import functools
import json
from datetime import UTC, datetime
from decimal import Decimal

from django.db.models import CharField, Count, F, Prefetch, Q, QuerySet, Subquery, Sum, Value
from django.db.models.expressions import RawSQL

from geomarket.accounts.roles import is_operator
from geomarket.api.json_pages import CompiledJsonPages
from geomarket.api.pagination import CountedPage
from geomarket.shapes import Coordinates, Shape, coordinates, json_array_sql
from geomarket.sql import CompiledQuery, PreparedStatement, fetch_all
from merchants.selectors import ADDRESS_LOCATIONS_SQL, MERCHANT_LOCATIONS_SQL
from orders.handover import handover_code_shown
from orders.models import (
    ACTIVE_DELIVERY_STATUSES,
    REVENUE_STATUSES,
    WAITING_FOR_COURIER,
    Order,
    OrderIncident,
    OrderItem,
    OrderStatus,
    OrderStatusChange,
)
from orders.shapes import (
    ADDRESS_TEXT_FIELDS,
    HANDOVER_CODE,
    INCIDENT,
    MAP_ORDER,
    MERCHANT_ORDER,
    ORDER,
    ORDER_DETAIL,
    ORDER_HISTORY,
    ORDER_ITEM,
    SHORTAGE,
)


def _own_profile_id(relation: str, user_field: str, user_id: int) -> Subquery:
    """The id of the user's own profile (its `user_field` is the user, one-to-one) that
    the order's `relation` points at, a merchant or a courier; NULL when there is none."""
    profile = Order._meta.get_field(relation).related_model
    return Subquery(profile.objects.filter(**{f"{user_field}_id": user_id}).values("pk")[:1])


def orders_visible_to(*, user) -> QuerySet[Order]:
    """Customers see their own orders, owners their merchant's, couriers those assigned
    to them, operators all; one user may hold several of these roles.

    The merchant and courier are compared by id, each looked up once: a condition on a
    joined row's owner would join every order before filtering, where `buyer_id = u OR
    merchant_id = m OR courier_id = c` reads only the user's orders through three indexes.
    """
    return Order.objects.all() if is_operator(user) else orders_visible_to_id(user_id=user.pk)


def orders_visible_to_id(*, user_id: int) -> QuerySet[Order]:
    """The orders a user who is no operator sees (`orders_visible_to`)."""
    return Order.objects.filter(
        Q(buyer_id=user_id)
        | Q(merchant_id=_own_profile_id("merchant", "owner", user_id))
        | Q(courier_id=_own_profile_id("courier", "user", user_id))
    )


# An order's lines, prefetched as a plain list (`order.lines`): prefetched into the
# `items` manager, Django builds a queryset per order to hold them, a third of the CPU of
# a page of twenty orders.
LINES = Prefetch("items", to_attr="lines")


def _with_details(orders: QuerySet[Order]) -> QuerySet[Order]:
    return orders.select_related("merchant", "delivery_address").prefetch_related(LINES)


# An order delivered farther than this from its address is worth an operator's look.
DELIVERED_FAR_M = 200


def _listed(
    orders: QuerySet[Order],
    *,
    status: str | None = None,
    merchant_id: int | None = None,
    created_after=None,
    created_before=None,
    delivered_far: bool = False,
) -> QuerySet[Order]:
    if status:
        orders = orders.filter(status=status)
    if delivered_far:
        orders = orders.filter(delivered_distance_m__gt=DELIVERED_FAR_M)
    if merchant_id is not None:
        orders = orders.filter(merchant_id=merchant_id)
    if created_after is not None:
        orders = orders.filter(created_at__gte=created_after)
    if created_before is not None:
        orders = orders.filter(created_at__lte=created_before)
    return orders.order_by("-created_at", "-id")


def order_list(*, user, **filters) -> QuerySet[Order]:
    """The orders `user` sees (`orders_visible_to`) that pass the list's `filters`
    (status, merchant_id, created_after, created_before, delivered_far), newest first."""
    return _listed(orders_visible_to(user=user), **filters)


# How far the orders list counts exactly; past it the count is the planner's estimate
# (at least one more), so an operator's list never counts millions of orders a request.
ORDER_COUNT_BOUND = 1000


def _json_array(shape: Shape, rows: str, *, order_by: tuple[str, ...]) -> RawSQL:
    """The JSON array of `shape`'s objects from `rows`, a subquery reading the order of
    the row the ORM reads (`_ORDER_TABLE`, its base table, unaliased)."""
    return RawSQL(f"({json_array_sql(shape, rows, order_by=order_by)})", ())  # noqa: S611


_ORDER_TABLE = f'"{Order._meta.db_table}"'

# Each order's lines, shortages and history as their JSON arrays, in the order's own
# row: a second query per page, and a model per line, cost more than the page's SQL.
# Only table and column names go in.
_ITEMS_JSON = _json_array(
    ORDER_ITEM,
    "SELECT id, product_id, title, unit_price, quantity, line_total"  # noqa: S608
    f" FROM {OrderItem._meta.db_table} WHERE order_id = {_ORDER_TABLE}.id",
    order_by=("id",),
)
_SHORTAGES_JSON = _json_array(
    SHORTAGE,
    f"SELECT * FROM ROWS FROM (jsonb_to_recordset({_ORDER_TABLE}.shortages)"  # noqa: S608
    " AS (product_id bigint, requested bigint, available bigint)) WITH ORDINALITY"
    " AS s(product_id, requested, available, n)",
    order_by=("n",),
)
_HISTORY_JSON = _json_array(
    ORDER_HISTORY,
    "SELECT id, from_status, to_status, actor_id, reason, created_at"  # noqa: S608
    f" FROM {OrderStatusChange._meta.db_table} WHERE order_id = {_ORDER_TABLE}.id",
    order_by=("created_at", "id"),
)


def order_rows(orders: QuerySet[Order]) -> QuerySet:
    """`orders` as rows of the columns `ORDER` is rendered from."""
    return orders.values(
        *(item.column for item in ORDER.fields if item.shape is None),
        "merchant_id",
        merchant_name=F("merchant__name"),
        **{
            f"address_{name}": F(f"delivery_address__{name}")
            for name in (*ADDRESS_TEXT_FIELDS, "location")
        },
        items_json=_ITEMS_JSON,
        shortages_json=_SHORTAGES_JSON,
    )


# Stand-ins for the values of a compiled order read (`CompiledQuery`): no real user,
# merchant, courier, order, status or time.
_USER = -7_300_001
_MERCHANT = -7_300_002
_ORDER = -7_300_003
_COURIER = -7_300_004
_STAND_INS = {
    "status": "~status~",
    "merchant_id": _MERCHANT,
    "created_after": datetime(1901, 2, 3, 4, 5, 6, 7, tzinfo=UTC),
    "created_before": datetime(1901, 2, 3, 4, 5, 6, 8, tzinfo=UTC),
}
# Filters that take no value of the call's: given, they are a fixed condition.
_FIXED_FILTERS = {"delivered_far": True}


@functools.cache
def _order_list_pages(*, operator: bool, filters: frozenset[str]) -> CompiledJsonPages:
    # One compiled statement per caller kind (operators see every order) and set of
    # filters given.
    given = {name: _STAND_INS[name] for name in filters if name in _STAND_INS}
    fixed = {name: value for name, value in _FIXED_FILTERS.items() if name in filters}
    orders = Order.objects.all() if operator else orders_visible_to_id(user_id=_USER)
    return CompiledJsonPages(
        ORDER,
        _listed(orders, **given, **fixed),
        rows=order_rows,
        slots={**given, **({} if operator else {"user": _USER})},
        bounded=True,
    )


def order_list_page(*, user, offset: int, limit: int, **filters) -> CountedPage:
    """Page `offset`, `limit` of `order_list(user=user, **filters)` as its JSON text
    (`ORDER` objects), and the count of all of it, exact up to `ORDER_COUNT_BOUND` and the
    planner's estimate past it (`count_is_estimate`)."""
    given = {
        name: value
        for name, value in filters.items()
        if value is not None and value != "" and _FIXED_FILTERS.get(name, value) == value
    }
    operator = is_operator(user)
    pages = _order_list_pages(operator=operator, filters=frozenset(given))
    values = {name: value for name, value in given.items() if name not in _FIXED_FILTERS}
    if not operator:
        values["user"] = user.pk
    return pages.read(offset=offset, limit=limit, count_bound=ORDER_COUNT_BOUND, **values)


def _visible_stand_in(*, operator: bool) -> tuple[QuerySet[Order], dict]:
    """The order `_ORDER` where an operator, or the user `_USER` who is none, sees it
    (`orders_visible_to`), and the slots of a compiled read of it."""
    if operator:
        return Order.objects.filter(pk=_ORDER), {"order": _ORDER}
    return orders_visible_to_id(user_id=_USER).filter(pk=_ORDER), {"order": _ORDER, "user": _USER}


@functools.cache
def _order_detail_compiled(*, operator: bool) -> tuple[CompiledQuery, PreparedStatement]:
    order, slots = _visible_stand_in(operator=operator)
    rows = order_rows(order).annotate(
        history_json=_HISTORY_JSON,
        **{HANDOVER_CODE.column: Value(None, output_field=CharField())},
        code_buyer_id=F("buyer_id"),
        code_hash=F("handover_code_hash"),
    )
    compiled = CompiledQuery(rows, slots=slots)
    # Only a compiled statement and a declared shape go in.
    sql = (
        f"SELECT {ORDER_DETAIL.json_sql(alias='r')}, r.code_buyer_id, r.status, r.code_hash"  # noqa: S608
        f" FROM ({compiled.sql}) r"
    )
    return compiled, PreparedStatement(sql)


# How the answer PostgreSQL renders ends: with the handover code, null (`HANDOVER_CODE`).
_NO_HANDOVER_CODE = f'"{HANDOVER_CODE.name}":null}}'


def order_detail_json(*, user, order_id: int) -> str | None:
    """The order's answer (`ORDER_DETAIL`) as JSON text, rendered by PostgreSQL; None
    when `user` may not see it (`orders_visible_to`). The handover code, which only the
    server's key derives, is put in by Python for the order's customer."""
    operator = is_operator(user)
    compiled, statement = _order_detail_compiled(operator=operator)
    values = {"order": order_id} if operator else {"order": order_id, "user": user.pk}
    rows = statement.fetch_all(compiled.params(**values))
    if not rows:
        return None
    body, buyer_id, status, code_hash = rows[0]
    code = handover_code_shown(
        viewer_id=user.pk, buyer_id=buyer_id, status=status, order_id=order_id, code_hash=code_hash
    )
    if code is None:
        return body
    assert body.endswith(_NO_HANDOVER_CODE)  # noqa: S101 - the shape's last field
    return f"{body.removesuffix('null}')}{json.dumps(code)}}}"


def order_detail(*, user, order_id: int) -> Order | None:
    history = Prefetch("history", queryset=OrderStatusChange.objects.order_by("created_at", "id"))
    return (
        _with_details(orders_visible_to(user=user))
        .prefetch_related(history)
        .filter(pk=order_id)
        .first()
    )


@functools.cache
def _incident_pages(*, operator: bool) -> CompiledJsonPages:
    order, slots = _visible_stand_in(operator=operator)
    incidents = OrderIncident.objects.filter(order_id=_ORDER).order_by("created_at", "id")
    return CompiledJsonPages(
        INCIDENT,
        incidents,
        rows=lambda rows: rows.values(*INCIDENT.columns),
        slots={"order": _ORDER},
        guard=CompiledQuery(order.values("pk"), slots=slots),
    )


def order_incident_page(*, user, order_id: int, offset: int, limit: int) -> CountedPage | None:
    """Page `offset`, `limit` of the order's incidents, oldest first, as its JSON text
    (`INCIDENT` objects), and the count of all of them; None when `user` may not see the
    order (`orders_visible_to`). One statement."""
    pages = _incident_pages(operator=is_operator(user))
    return pages.read(offset=offset, limit=limit, order=order_id, user=user.pk)


def _merchant_order_rows(orders: QuerySet[Order]) -> QuerySet:
    return orders.annotate(total_items=Sum("items__quantity")).values(*MERCHANT_ORDER.columns)


@functools.cache
def _merchant_order_pages() -> CompiledJsonPages:
    orders = Order.objects.filter(merchant_id=_MERCHANT).order_by("-created_at", "-id")
    return CompiledJsonPages(
        MERCHANT_ORDER, orders, rows=_merchant_order_rows, slots={"merchant": _MERCHANT}
    )


def merchant_order_page(*, merchant_id: int, offset: int, limit: int) -> CountedPage:
    """Page `offset`, `limit` of the merchant's orders, newest first, as its JSON text
    (`MERCHANT_ORDER` objects), and the count of all of them."""
    return _merchant_order_pages().read(offset=offset, limit=limit, merchant=merchant_id)


@functools.cache
def _merchant_tally() -> CompiledQuery:
    # Compiled once: the ORM's build of this grouped read cost more CPU than running it.
    orders = Order.objects.filter(merchant_id=_MERCHANT).order_by()
    tally = orders.values_list("status").annotate(n=Count("id"), total=Sum("total"))
    return CompiledQuery(tally, slots={"merchant": _MERCHANT})


def order_stats(*, merchant_id: int | None) -> dict:
    """Orders by status and revenue, of one merchant or, from the tally, of all."""
    if merchant_id is None:
        tally = fetch_all(
            "SELECT status, sum(orders), sum(total) FROM orders_orderstatustally GROUP BY status",
            {},
        )
    else:
        compiled = _merchant_tally()
        tally = fetch_all(compiled.sql, compiled.params(merchant=merchant_id))
    counts = {status: int(n) for status, n, _ in tally if n}
    revenue = sum(
        (total for status, _, total in tally if status in REVENUE_STATUSES), Decimal("0.00")
    )
    return {
        "by_status": {status.value: counts.get(status.value, 0) for status in OrderStatus},
        "orders": sum(counts.values()),
        "revenue": revenue,
    }


# Reads of orders for delivery's assignment and courier statuses. Orders owns its table,
# so the SQL naming it lives here; delivery runs these functions or composes these
# fragments into its own statements, in the same round trips as before.


# Oldest first, so that past `cap` waiting orders the oldest are the ones assigned (the
# waiting orders' index is in this order); SKIP LOCKED never waits, so the order of the
# locks cannot deadlock.
def orders_waiting_lock(*, order_ids: list[int] | None, limit: int) -> list[tuple[int, datetime]]:
    """Lock up to `limit` orders waiting for a courier (`WAITING_FOR_COURIER`, the
    condition of the index it reads, `order_waiting_idx`), of `order_ids` when given,
    oldest first: `(id, created_at)` rows, locked with SKIP LOCKED, so concurrent callers
    share out the orders and never take one twice. Call it inside a transaction."""
    waiting = Order.objects.filter(WAITING_FOR_COURIER)
    if order_ids is not None:
        waiting = waiting.filter(pk__in=order_ids)
    return list(
        waiting.order_by("created_at", "id")
        .select_for_update(skip_locked=True)
        .values_list("id", "created_at")[:limit]
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
# pickup` (the merchant's point) and `dropoff` (the delivery address's), and the
# merchant's `learned_prep_time_s` for the orders' estimates. Format `{courier}` in and
# join it LATERAL.
COURIER_ORDER_POINTS_SQL = f"""
SELECT o.id, o.merchant_id, o.status, m.location AS pickup, a.location AS dropoff,
       m.learned_prep_time_s
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


# The samples a merchant learns its preparation time from (`merchant_prep_times_learn`):
# `merchant_id, seconds` for each order ready since `%(since)s`, the seconds from its
# confirmation to `ready`, both times from its status history (placement records
# `confirmed` as the order's first change, at its creation).
PREP_TIME_SAMPLES_SQL = f"""
SELECT o.merchant_id, extract(epoch FROM ready.created_at - confirmed.created_at) AS seconds
FROM orders_orderstatuschange ready
JOIN orders_orderstatuschange confirmed
    ON confirmed.order_id = ready.order_id AND confirmed.to_status = '{OrderStatus.CONFIRMED}'
JOIN orders_order o ON o.id = ready.order_id
WHERE ready.to_status = '{OrderStatus.READY}' AND ready.created_at >= %(since)s
"""  # noqa: S608 - only the statuses' names are interpolated


# The console's map: orders waiting for a courier or out with one, newest first, at most
# this many (a map of more is unreadable anyway).
MAP_ORDERS = 500


def orders_on_map(*, merchant_id: int | None = None) -> list[dict]:
    """Live orders with their delivery point (`MAP_ORDER`), a merchant's only when
    `merchant_id`."""
    orders = Order.objects.filter(status__in=ACTIVE_DELIVERY_STATUSES)
    if merchant_id is not None:
        orders = orders.filter(merchant_id=merchant_id)
    lng, lat = coordinates("delivery_address__location")
    rows = (
        orders.annotate(lng=lng, lat=lat)
        .order_by("-created_at", "-id")
        .values_list("id", "status", "merchant_id", "courier_id", "lng", "lat")[:MAP_ORDERS]
    )
    return MAP_ORDER.render_rows([(*row[:4], Coordinates(*row[4:])) for row in rows])
