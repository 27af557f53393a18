"""Operator reports over delivered orders, dated by delivery time.

Each report is one SQL query whose ranking, shares and running totals are window
functions evaluated by PostgreSQL; Python only renders the rows.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.db import connection
from django.db.models import (
    Avg,
    Count,
    DecimalField,
    DurationField,
    ExpressionWrapper,
    F,
    Func,
    OuterRef,
    Subquery,
    Sum,
    Window,
)
from django.db.models.functions import DenseRank

from catalog.models import Product
from merchants.models import Merchant
from orders.models import Order, OrderItem, OrderStatus

CENT = Decimal("0.01")
INTERVALS = ("day", "week", "month")


@dataclass(frozen=True)
class DateRange:
    """Inclusive dates in UTC, as half-open datetimes for index-friendly comparisons."""

    date_from: date
    date_to: date

    @property
    def start(self) -> datetime:
        return datetime.combine(self.date_from, time.min, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        return datetime.combine(self.date_to + timedelta(days=1), time.min, tzinfo=UTC)


class SumOf(Func):
    """SUM over an aggregate, for windows such as SUM(SUM(total)) OVER ()."""

    function = "SUM"
    window_compatible = True


def _delivered(range_: DateRange, merchant_id: int | None = None):
    orders = Order.objects.filter(
        status=OrderStatus.DELIVERED, delivered_at__gte=range_.start, delivered_at__lt=range_.end
    )
    if merchant_id is not None:
        orders = orders.filter(merchant_id=merchant_id)
    return orders


def money(value) -> str:
    return f"{Decimal(value or 0).quantize(CENT, ROUND_HALF_UP)}"


def _merchant_name(ref: str) -> Subquery:
    return Subquery(Merchant.objects.filter(pk=OuterRef(ref)).values("name"))


def top_products(*, range_: DateRange, merchant_id: int | None = None, top: int = 5) -> list[dict]:
    """Best sellers per merchant by units, dense-ranked within the merchant.

    1. Sum the delivered items per (merchant_id, product_id), ids only. Grouping by the
       names too would join them to every item (two million over 90 days of the bench
       city) and carry them through an aggregate that already spills to disk.
    2. Rank within the merchant; PostgreSQL stops reading a partition past `top`.
    3. Look the names up as scalar subqueries, which PostgreSQL evaluates after the
       rank filter, so only for the rows that are returned.
    """
    items = OrderItem.objects.filter(
        order__status=OrderStatus.DELIVERED,
        order__delivered_at__gte=range_.start,
        order__delivered_at__lt=range_.end,
    )
    if merchant_id is not None:
        items = items.filter(order__merchant_id=merchant_id)
    rows = (
        items.annotate(merchant_id=F("order__merchant_id"))
        .values("merchant_id", "product_id")
        .annotate(units_sold=Sum("quantity"), revenue=Sum("line_total"))
        .annotate(
            rank=Window(DenseRank(), partition_by=F("merchant_id"), order_by=F("units_sold").desc())
        )
        .filter(rank__lte=top)
        .annotate(
            merchant_name=_merchant_name("merchant_id"),
            title=Subquery(Product.objects.filter(pk=OuterRef("product_id")).values("title")),
        )
        .order_by("merchant_id", "rank", "product_id")
        .values_list(
            "merchant_id", "merchant_name", "product_id", "title", "units_sold", "revenue", "rank"
        )
    )
    return [
        {
            "merchant_id": merchant,
            "merchant_name": merchant_name,
            "product_id": product,
            "title": title,
            "units_sold": units_sold,
            "revenue": money(revenue),
            "rank": rank,
        }
        for merchant, merchant_name, product, title, units_sold, revenue, rank in rows
    ]


def merchants_report(*, range_: DateRange) -> list[dict]:
    """Merchants by revenue, share of the total and delivery time.

    Grouped by merchant_id alone, then named by a scalar subquery per group: grouping
    by (merchant_id, name) makes PostgreSQL guess far more groups than merchants, which
    ruled out the parallel aggregate and joined every order to its merchant first.
    """
    rows = (
        _delivered(range_)
        .values("merchant_id")
        .annotate(
            orders=Count("*"),
            revenue=Sum("total"),
            avg_delivery=Avg(
                ExpressionWrapper(F("delivered_at") - F("created_at"), output_field=DurationField())
            ),
        )
        .annotate(
            all_revenue=Window(SumOf(F("revenue"), output_field=DecimalField())),
            rank=Window(DenseRank(), order_by=F("revenue").desc()),
            name=_merchant_name("merchant_id"),
        )
        .order_by("rank", "merchant_id")
        .values_list(
            "merchant_id", "name", "orders", "revenue", "all_revenue", "rank", "avg_delivery"
        )
    )
    return [
        {
            "merchant_id": merchant,
            "name": name,
            "orders": orders,
            "revenue": money(revenue),
            "revenue_share": round(float(revenue / all_revenue), 6) if all_revenue else 0.0,
            "rank": rank,
            "avg_delivery_minutes": round(avg_delivery.total_seconds() / 60, 2),
        }
        for merchant, name, orders, revenue, all_revenue, rank, avg_delivery in rows
    ]


# Periods come from generate_series so that empty ones exist, with zeros, before the
# running total and the 7-period moving average are taken over them.
REVENUE_SQL = """
WITH periods AS (
    SELECT generate_series(
        date_trunc(%(interval)s, %(date_from)s::timestamp),
        date_trunc(%(interval)s, %(date_to)s::timestamp),
        ('1 ' || %(interval)s)::interval
    ) AS period
),
delivered AS (
    SELECT date_trunc(%(interval)s, delivered_at AT TIME ZONE 'UTC') AS period,
           count(*) AS orders, sum(total) AS revenue
    FROM orders_order
    WHERE status = 'delivered' AND delivered_at >= %(start)s AND delivered_at < %(end)s
      {merchant}
    GROUP BY 1
)
SELECT p.period::date AS period,
       COALESCE(d.orders, 0) AS orders,
       COALESCE(d.revenue, 0) AS revenue,
       sum(COALESCE(d.revenue, 0)) OVER (ORDER BY p.period) AS running_revenue,
       round(avg(COALESCE(d.revenue, 0)) OVER (
           ORDER BY p.period ROWS BETWEEN 6 PRECEDING AND CURRENT ROW), 2) AS moving_avg_7
FROM periods p LEFT JOIN delivered d ON d.period = p.period
ORDER BY p.period
"""
# Two statements rather than `(%s IS NULL OR merchant_id = %s)`: bound server-side, or
# prepared, that OR leaves a plan that cannot seek order_merchant_delivered_idx.
REVENUE_ALL_SQL = REVENUE_SQL.format(merchant="")
REVENUE_MERCHANT_SQL = REVENUE_SQL.format(merchant="AND merchant_id = %(merchant_id)s")


def revenue_report(
    *, range_: DateRange, interval: str = "day", merchant_id: int | None = None
) -> list[dict]:
    with connection.cursor() as cursor:
        cursor.execute(
            REVENUE_ALL_SQL if merchant_id is None else REVENUE_MERCHANT_SQL,
            {
                "interval": interval,
                "date_from": range_.date_from,
                "date_to": range_.date_to,
                "start": range_.start,
                "end": range_.end,
                "merchant_id": merchant_id,
            },
        )
        rows = cursor.fetchall()
    return [
        {
            "period": period.isoformat(),
            "orders": orders,
            "revenue": money(revenue),
            "running_revenue": money(running),
            "moving_avg_7": money(moving),
        }
        for period, orders, revenue, running, moving in rows
    ]
