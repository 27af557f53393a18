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
    Sum,
    Window,
)
from django.db.models.functions import DenseRank

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


def top_products(*, range_: DateRange, merchant_id: int | None = None, top: int = 5) -> list[dict]:
    items = OrderItem.objects.filter(
        order__status=OrderStatus.DELIVERED,
        order__delivered_at__gte=range_.start,
        order__delivered_at__lt=range_.end,
    )
    if merchant_id is not None:
        items = items.filter(order__merchant_id=merchant_id)
    rows = (
        items.values("product_id")
        .annotate(
            merchant_id=F("order__merchant_id"),
            merchant_name=F("order__merchant__name"),
            title=F("product__title"),
            units_sold=Sum("quantity"),
            revenue=Sum("line_total"),
        )
        .annotate(
            rank=Window(
                DenseRank(), partition_by=F("order__merchant_id"), order_by=F("units_sold").desc()
            )
        )
        .filter(rank__lte=top)
        .order_by("merchant_id", "rank", "product_id")
    )
    return [
        {
            "merchant_id": row["merchant_id"],
            "merchant_name": row["merchant_name"],
            "product_id": row["product_id"],
            "title": row["title"],
            "units_sold": row["units_sold"],
            "revenue": money(row["revenue"]),
            "rank": row["rank"],
        }
        for row in rows
    ]


def merchants_report(*, range_: DateRange) -> list[dict]:
    rows = (
        _delivered(range_)
        .values("merchant_id")
        .annotate(
            name=F("merchant__name"),
            orders=Count("id"),
            revenue=Sum("total"),
            avg_delivery=Avg(
                ExpressionWrapper(F("delivered_at") - F("created_at"), output_field=DurationField())
            ),
        )
        .annotate(
            all_revenue=Window(SumOf(F("revenue"), output_field=DecimalField())),
            rank=Window(DenseRank(), order_by=F("revenue").desc()),
        )
        .order_by("rank", "merchant_id")
    )
    return [
        {
            "merchant_id": row["merchant_id"],
            "name": row["name"],
            "orders": row["orders"],
            "revenue": money(row["revenue"]),
            "revenue_share": round(float(row["revenue"] / row["all_revenue"]), 6)
            if row["all_revenue"]
            else 0.0,
            "rank": row["rank"],
            "avg_delivery_minutes": round(row["avg_delivery"].total_seconds() / 60, 2),
        }
        for row in rows
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
      AND (%(merchant_id)s::bigint IS NULL OR merchant_id = %(merchant_id)s::bigint)
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


def revenue_report(
    *, range_: DateRange, interval: str = "day", merchant_id: int | None = None
) -> list[dict]:
    with connection.cursor() as cursor:
        cursor.execute(
            REVENUE_SQL,
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
