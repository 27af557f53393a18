"""The daily rollups of delivered and failed orders that the reports read
(`analytics.models`).

An order counts in the reports once it is delivered, on the UTC day of `delivered_at`,
and delivered is final (`orders.services.transitions.TRANSITIONS` leads nowhere from
it); cancelled and rejected orders never count. An order that fails counts among its
merchant's failures on the UTC day of its `failed` status change (`OrderStatusChange`),
and still does once returned: it failed, whatever became of it after. So the rollups
change only when an order is delivered or fails: `rollups_order_transitioned`, called
by orders in the transition's transaction (`settings.HOOKS["order_transitioned"]`),
adds that order. Writes that bypass the transitions (the demo seeding's bulk history)
call `rollups_rebuild`.
"""

from datetime import UTC, date, datetime, time

from django.db import connection, transaction
from django.db.models import Count, F, QuerySet, Sum
from django.db.models.functions import TruncDate

from analytics.models import MerchantDay, MerchantTotal, PlatformDay, ProductDay
from orders.models import Order, OrderItem, OrderStatus, OrderStatusChange

_MERCHANT_DAY = MerchantDay._meta.db_table
_MERCHANT_TOTAL = MerchantTotal._meta.db_table
_PRODUCT_DAY = ProductDay._meta.db_table
_PLATFORM_DAY = PlatformDay._meta.db_table

# Adds the sums to the rows already there. The platform's and products' days: two
# deliveries on one day, in concurrent transactions, both count (the second waits for
# the first's row lock and adds to what it committed); rows are written in key order, so
# two transactions never wait for each other's rows in a cycle.
#
# The merchants' days: a merchant's running totals (`MerchantDay.orders_to_date`...)
# change on the day added to and on every later day it has. `changes` holds those days
# with the day's own sums and the running sum of what is added up to it. A day already
# kept adds both; a new day starts from the totals of the merchant's last day before
# it. All of that is read from the statement's snapshot, which is why the merchant's
# deliveries are serialized (`_LOCK_MERCHANTS_SQL`) before this statement starts: then
# no other transaction writes the merchant's days meanwhile, and a new day is a plain
# INSERT. The same holds of its totals at its last day (`MerchantTotal`): all it has
# delivered, dated by the latest of its days.
_ADD_SQL = f"""
WITH merchant_days AS ({{merchant_days}}),
first_days AS (SELECT merchant_id, min(day) AS day FROM merchant_days GROUP BY 1),
days AS (
    SELECT s.merchant_id, s.day, s.orders, s.revenue, s.delivery_time, s.failed
    FROM merchant_days s
    UNION ALL
    SELECT d.merchant_id, d.day, 0, 0, '0'::interval, 0
    FROM {_MERCHANT_DAY} d
    JOIN first_days f ON d.merchant_id = f.merchant_id AND d.day > f.day
),
changes AS (
    SELECT merchant_id, day,
           sum(orders)::bigint AS orders, sum(revenue) AS revenue,
           sum(delivery_time) AS delivery_time, sum(failed)::bigint AS failed,
           sum(sum(orders)) OVER w AS orders_added,
           sum(sum(revenue)) OVER w AS revenue_added,
           sum(sum(delivery_time)) OVER w AS delivery_time_added,
           sum(sum(failed)) OVER w AS failed_added
    FROM days
    GROUP BY merchant_id, day
    WINDOW w AS (PARTITION BY merchant_id ORDER BY day)
),
merchant_days_kept AS (
    UPDATE {_MERCHANT_DAY} d SET
        orders = d.orders + c.orders,
        revenue = d.revenue + c.revenue,
        delivery_time = d.delivery_time + c.delivery_time,
        failed = d.failed + c.failed,
        orders_to_date = d.orders_to_date + c.orders_added,
        revenue_to_date = d.revenue_to_date + c.revenue_added,
        delivery_time_to_date = d.delivery_time_to_date + c.delivery_time_added,
        failed_to_date = d.failed_to_date + c.failed_added
    FROM changes c
    WHERE d.merchant_id = c.merchant_id AND d.day = c.day
),
merchant_days_added AS (
    INSERT INTO {_MERCHANT_DAY} (merchant_id, day, orders, revenue, delivery_time, failed,
                                 orders_to_date, revenue_to_date, delivery_time_to_date,
                                 failed_to_date)
    SELECT c.merchant_id, c.day, c.orders, c.revenue, c.delivery_time, c.failed,
           coalesce(p.orders_to_date, 0) + c.orders_added,
           coalesce(p.revenue_to_date, 0) + c.revenue_added,
           coalesce(p.delivery_time_to_date, '0'::interval) + c.delivery_time_added,
           coalesce(p.failed_to_date, 0) + c.failed_added
    FROM changes c
    LEFT JOIN LATERAL (
        SELECT orders_to_date, revenue_to_date, delivery_time_to_date, failed_to_date
        FROM {_MERCHANT_DAY} p
        WHERE p.merchant_id = c.merchant_id AND p.day < c.day
        ORDER BY p.day DESC
        LIMIT 1
    ) p ON true
    WHERE NOT EXISTS (
        SELECT FROM {_MERCHANT_DAY} e WHERE e.merchant_id = c.merchant_id AND e.day = c.day
    )
    ORDER BY c.merchant_id, c.day
),
merchant_totals_added AS (
    INSERT INTO {_MERCHANT_TOTAL} AS t (merchant_id, day, orders_to_date, revenue_to_date,
                                        delivery_time_to_date, failed_to_date)
    SELECT merchant_id, max(day), sum(orders), sum(revenue), sum(delivery_time), sum(failed)
    FROM merchant_days
    GROUP BY merchant_id
    ORDER BY merchant_id
    ON CONFLICT (merchant_id) DO UPDATE SET
        day = greatest(t.day, EXCLUDED.day),
        orders_to_date = t.orders_to_date + EXCLUDED.orders_to_date,
        revenue_to_date = t.revenue_to_date + EXCLUDED.revenue_to_date,
        delivery_time_to_date = t.delivery_time_to_date + EXCLUDED.delivery_time_to_date,
        failed_to_date = t.failed_to_date + EXCLUDED.failed_to_date
),
platform_days_added AS (
    INSERT INTO {_PLATFORM_DAY} AS d (day, shard, orders, revenue)
    SELECT s.day, s.merchant_id %% {PlatformDay.SHARDS}, sum(s.orders), sum(s.revenue)
    FROM merchant_days s
    WHERE s.orders > 0
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


# A delivery adds to its merchant's running totals from what the statement sees of the
# merchant's other days when it starts. Two transactions delivering for one merchant on
# different days (either side of a UTC midnight, or a late delivery dated back) lock no
# row in common, so without this each could start before the other commits and the
# later day's totals would miss the earlier day's delta. The lock is taken in a statement
# of its own, before the one that adds: in READ COMMITTED that one's snapshot is then
# taken after the previous holder committed. Merchants are locked in key order, so two
# transactions never wait for each other in a cycle; two merchants whose keys collide
# only wait for each other. Held until the transaction ends.
_LOCK_MERCHANTS_SQL = """
SELECT pg_advisory_xact_lock(hashtext('analytics_merchantday'), s.key)
FROM (SELECT DISTINCT hashint8(merchant_id) AS key FROM ({merchants}) m ORDER BY 1) s
"""


# A merchant's days as `_ADD_SQL` takes them: its deliveries' sums and its failures'
# counts, a row each (both sides add up the same columns).
_MERCHANT_DAYS_SQL = """
SELECT merchant_id, day, orders, revenue, delivery_time, 0::bigint AS failed
FROM ({delivered}) d
UNION ALL
SELECT merchant_id, day, 0::bigint, 0::numeric, '0'::interval, failed
FROM ({failures}) f
"""


def _rollups_add(
    *,
    orders: QuerySet[Order],
    failures: QuerySet[OrderStatusChange],
    lock_merchants: bool = True,
) -> None:
    """Add the delivered ones of `orders` and the failures (`failed` status changes) to
    the rollups, in one statement after locking the merchants of `orders`' running
    totals (unless the caller holds the tables)."""
    delivered = orders.filter(status=OrderStatus.DELIVERED)
    delivered_days = (
        delivered.annotate(day=TruncDate("delivered_at", tzinfo=UTC))
        .values("merchant_id", "day")
        .annotate(
            orders=Count("*"),
            revenue=Sum("total"),
            delivery_time=Sum(F("delivered_at") - F("created_at")),
        )
        .order_by()
    )
    failed_days = (
        failures.filter(to_status=OrderStatus.FAILED)
        .annotate(merchant_id=F("order__merchant_id"), day=TruncDate("created_at", tzinfo=UTC))
        .values("merchant_id", "day")
        .annotate(failed=Count("*"))
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
    delivered_sql, delivered_params = delivered_days.query.sql_with_params()
    failed_sql, failed_params = failed_days.query.sql_with_params()
    product_sql, product_params = product_days.query.sql_with_params()
    sql = _ADD_SQL.format(
        merchant_days=_MERCHANT_DAYS_SQL.format(delivered=delivered_sql, failures=failed_sql),
        product_days=product_sql,
    )
    with connection.cursor() as cursor:
        if lock_merchants:
            merchants = orders.values("merchant_id").query
            merchants_sql, merchants_params = merchants.sql_with_params()
            cursor.execute(_LOCK_MERCHANTS_SQL.format(merchants=merchants_sql), merchants_params)
        cursor.execute(sql, (*delivered_params, *failed_params, *product_params))


# The transitions that add an order to the rollups: it is delivered, or it failed.
_COUNTED = frozenset({OrderStatus.DELIVERED, OrderStatus.FAILED})


def rollups_order_transitioned(*, order: Order, from_status: str, to_status: str) -> None:
    """Count an order in the rollups when it is delivered or fails, in the transition's
    transaction (the `order_transitioned` hook, called once the transition's status
    change is written: a failure is dated by it)."""
    if to_status in _COUNTED:
        _rollups_add(
            orders=Order.objects.filter(pk=order.pk),
            failures=OrderStatusChange.objects.filter(order_id=order.pk),
        )


_DELETE_SQL = f"""
WITH merchant_days AS (DELETE FROM {_MERCHANT_DAY} WHERE day >= %(since)s),
platform_days AS (DELETE FROM {_PLATFORM_DAY} WHERE day >= %(since)s),
merchant_totals AS (DELETE FROM {_MERCHANT_TOTAL})
DELETE FROM {_PRODUCT_DAY} WHERE day >= %(since)s
"""  # noqa: S608 (table names only)

# The totals at each merchant's last day left once the days from `since` are gone
# (`_DELETE_SQL` deleted them all: in one statement the insert would meet them still).
_TOTALS_KEPT_SQL = f"""
INSERT INTO {_MERCHANT_TOTAL} (merchant_id, day, orders_to_date, revenue_to_date,
                               delivery_time_to_date, failed_to_date)
SELECT DISTINCT ON (merchant_id)
       merchant_id, day, orders_to_date, revenue_to_date, delivery_time_to_date, failed_to_date
FROM {_MERCHANT_DAY}
WHERE day < %(since)s
ORDER BY merchant_id, day DESC
"""  # noqa: S608 (table names only)


# No savepoint inside the caller's transaction (the demo seeding's): this adds four
# statements to it, however many orders there are.
@transaction.atomic(savepoint=False)
def rollups_rebuild(*, since: date | None = None) -> None:
    """The rollups of the days from `since` (UTC; every day when None) made again from
    the delivered orders and the failed status changes, for orders written without
    their transitions (the demo seeding). Deliveries and failures committing meanwhile
    wait for it, then add to what they wrote."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"LOCK TABLE {_MERCHANT_DAY}, {_MERCHANT_TOTAL}, {_PLATFORM_DAY}, {_PRODUCT_DAY}"
            " IN EXCLUSIVE MODE"
        )
        cursor.execute(_DELETE_SQL, {"since": since or date.min})
        cursor.execute(_TOTALS_KEPT_SQL, {"since": since or date.min})
        # The orders were written in bulk, often in this very transaction, so the planner
        # has no statistics of them: gather them.
        cursor.execute(
            f"ANALYZE {Order._meta.db_table}, {OrderItem._meta.db_table},"
            f" {OrderStatusChange._meta.db_table}"
        )
    orders, failures = Order.objects.all(), OrderStatusChange.objects.all()
    if since is not None:
        start = datetime.combine(since, time.min, tzinfo=UTC)
        orders, failures = (
            orders.filter(delivered_at__gte=start),
            failures.filter(created_at__gte=start),
        )
    # The table lock keeps every delivery out; a lock per merchant would fill PostgreSQL's
    # lock table.
    #
    # The rollups the statement reads were just emptied, so the planner takes them for
    # a few rows, and scanned them whole for each merchant's day added: through every row
    # the statement itself had inserted (invisible to its own scans), hours for a bench
    # city's seed (a backtrace showed the sequential scan under ExecutorFinish). Read by
    # their keys instead, and joined by hashing, each of those rows costs one probe.
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_nestloop = off; SET LOCAL enable_seqscan = off")
        _rollups_add(orders=orders, failures=failures, lock_merchants=False)
        # The caller's transaction goes on with the planner as it was (after an error it
        # is rolled back, the settings with it).
        cursor.execute("RESET enable_nestloop; RESET enable_seqscan")
