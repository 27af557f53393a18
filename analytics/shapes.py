"""The rows of the operator reports, each declared once: the schema's serializers, the
CSV columns, the rows built in Python (for CSV) and the JSON answers PostgreSQL renders
(for Django's views and the event-loop route) all come from these (`geomarket.shapes`)."""

from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal

from rest_framework import serializers

from geomarket.shapes import CENT, DATE, INTEGER, MONEY, TEXT, Field, Kind, Shape

MILLIONTH = Decimal("0.000001")


def _share(value: Decimal | None) -> float:
    # As PostgreSQL rounds the numeric share: half away from zero, on the exact decimal.
    return 0.0 if value is None else float(Decimal(value).quantize(MILLIONTH, ROUND_HALF_UP))


def _minutes(value: timedelta | None) -> float | None:
    # As PostgreSQL rounds the interval's exact seconds (a numeric) over 60.
    if value is None:
        return None
    seconds = Decimal(value.days * 86400 + value.seconds) + Decimal(value.microseconds) / 10**6
    return float((seconds / 60).quantize(CENT, ROUND_HALF_UP))


# A share of a total, to six places; none when there is no total. The SQL's text keeps
# trailing zeros (0.250000 for 0.25): the same number in JSON.
SHARE = Kind(
    "share",
    serializers.FloatField,
    _share,
    sql="COALESCE(round({value}::numeric, 6)::text, '0.0')",
)
# An interval in minutes, to two places (the same number, as above).
MINUTES = Kind(
    "minutes",
    serializers.FloatField,
    _minutes,
    sql="COALESCE(round(extract(epoch FROM {value}) / 60, 2)::text, 'null')",
)

TOP_PRODUCT_ROW = Shape(
    "TopProductRow",
    (
        Field("merchant_id", INTEGER),
        Field("merchant_name", TEXT),
        Field("product_id", INTEGER),
        Field("title", TEXT),
        Field("units_sold", INTEGER),
        Field("revenue", MONEY),
        Field("rank", INTEGER),
    ),
)

REVENUE_ROW = Shape(
    "RevenueRow",
    (
        Field("period", DATE),
        Field("orders", INTEGER),
        Field("revenue", MONEY),
        Field("running_revenue", MONEY),
        Field("moving_avg_7", MONEY),
    ),
)

MERCHANT_ROW = Shape(
    "MerchantRow",
    (
        Field("merchant_id", INTEGER),
        Field("name", TEXT),
        # The merchants' `orders` are their orders' relation.
        Field("orders", INTEGER, source="delivered_orders"),
        Field("revenue", MONEY),
        Field("revenue_share", SHARE),
        Field("rank", INTEGER),
        Field("avg_delivery_minutes", MINUTES, source="avg_delivery"),
    ),
)
