"""The daily rollups of delivered orders that the reports read (`analytics.models`).

An order counts in the reports once it is delivered, on the UTC day of `delivered_at`,
and delivered is final (`orders.services.transitions.TRANSITIONS` leads nowhere from
it); cancelled and rejected orders never count. So the rollups change only when an
order is delivered: `rollups_order_transitioned`, called by orders in the transition's
transaction (`settings.HOOKS["order_transitioned"]`), adds that order. Writes that
bypass the transitions (the demo seeding's bulk history) call `rollups_rebuild`.
"""

from datetime import UTC, date, datetime, time

from django.db import connection, transaction
from django.db.models import Count, F, QuerySet, Sum
from django.db.models.functions import TruncDate

from analytics.models import MerchantDay, PlatformDay, ProductDay
from orders.models import Order, OrderItem, OrderStatus

_MERCHANT_DAY = MerchantDay._meta.db_table
_PRODUCT_DAY = ProductDay._meta.db_table
_PLATFORM_DAY = PlatformDay._meta.db_table

# Adds the sums to the rows already there: two deliveries on one day, in concurrent
# transactions, both count (the second waits for the first's row lock and adds to what
# it committed). Every delivery writes its rows in the same order, each table's in key
# order, so two transactions never wait for each other's rows in a cycle.
_ADD_SQL = f"""
WITH merchant_days AS ({{merchant_days}}),
merchant_days_added AS (
    INSERT INTO {_MERCHANT_DAY} AS d (merchant_id, day, orders, revenue, delivery_time)
    SELECT s.merchant_id, s.day, s.orders, s.revenue, s.delivery_time
    FROM merchant_days s
    ORDER BY s.merchant_id, s.day
    ON CONFLICT (merchant_id, day) DO UPDATE SET
        orders = d.orders + EXCLUDED.orders,
        revenue = d.revenue + EXCLUDED.revenue,
        delivery_time = d.delivery_time + EXCLUDED.delivery_time
),
platform_days_added AS (
    INSERT INTO {_PLATFORM_DAY} AS d (day, shard, orders, revenue)
    SELECT s.day, s.merchant_id %% {PlatformDay.SHARDS}, sum(s.orders), sum(s.revenue)
    FROM merchant_days s
    GROUP BY 1, 2
    ORDER BY 1, 2
    ON CONFLICT (day, shard) DO UPDATE SET
        orders = d.orders + EXCLUDED.orders,
        revenue = d.revenue + EXCLUDED.revenue
)
INSERT INTO {_PRODUCT_DAY} AS p (merchant_id, product_id, day, units, revenue)
SELECT s.merchant_id, s.product_id, s.day, s.units, s.revenue
FROM ({{product_days}}) s
ORDER BY s.merchant_id, s.product_id, s.day
ON CONFLICT (merchant_id, product_id, day) DO UPDATE SET
    units = p.units + EXCLUDED.units,
    revenue = p.revenue + EXCLUDED.revenue
"""  # noqa: S608 (table names and compiled querysets only)


def _rollups_add(orders: QuerySet[Order]) -> None:
    """Add the delivered `orders` to the rollups, in one statement."""
    delivered = orders.filter(status=OrderStatus.DELIVERED)
    merchant_days = (
        delivered.annotate(day=TruncDate("delivered_at", tzinfo=UTC))
        .values("merchant_id", "day")
        .annotate(
            orders=Count("*"),
            revenue=Sum("total"),
            delivery_time=Sum(F("delivered_at") - F("created_at")),
        )
        .order_by()
    )
    product_days = (
        OrderItem.objects.filter(order__in=delivered.values("pk"))
        .annotate(
            merchant_id=F("order__merchant_id"),
            day=TruncDate("order__delivered_at", tzinfo=UTC),
        )
        .values("merchant_id", "product_id", "day")
        .annotate(units=Sum("quantity"), revenue=Sum("line_total"))
        .order_by()
    )
    merchant_sql, merchant_params = merchant_days.query.sql_with_params()
    product_sql, product_params = product_days.query.sql_with_params()
    sql = _ADD_SQL.format(merchant_days=merchant_sql, product_days=product_sql)
    with connection.cursor() as cursor:
        cursor.execute(sql, (*merchant_params, *product_params))


def rollups_order_transitioned(*, order: Order, from_status: str, to_status: str) -> None:
    """Count an order in the rollups when it is delivered, in the transition's
    transaction (the `order_transitioned` hook)."""
    if to_status == OrderStatus.DELIVERED:
        _rollups_add(Order.objects.filter(pk=order.pk))


_DELETE_SQL = f"""
WITH merchant_days AS (DELETE FROM {_MERCHANT_DAY} WHERE day >= %(since)s),
platform_days AS (DELETE FROM {_PLATFORM_DAY} WHERE day >= %(since)s)
DELETE FROM {_PRODUCT_DAY} WHERE day >= %(since)s
"""  # noqa: S608 (table names only)


# No savepoint inside the caller's transaction (the demo seeding's): this adds three
# statements to it, however many orders there are.
@transaction.atomic(savepoint=False)
def rollups_rebuild(*, since: date | None = None) -> None:
    """The rollups of the days from `since` (UTC; every day when None) made again from
    the delivered orders, for orders written without their transitions (the demo
    seeding). Deliveries committing meanwhile wait for it, then add to what it wrote."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"LOCK TABLE {_MERCHANT_DAY}, {_PLATFORM_DAY}, {_PRODUCT_DAY} IN EXCLUSIVE MODE"
        )
        cursor.execute(_DELETE_SQL, {"since": since or date.min})
    orders = Order.objects.all()
    if since is not None:
        orders = orders.filter(delivered_at__gte=datetime.combine(since, time.min, tzinfo=UTC))
    _rollups_add(orders)
