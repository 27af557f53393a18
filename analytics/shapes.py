"""The rows of the operator reports, each declared once: the schema's serializers, the
CSV columns, the rows built in Python and the JSON that PostgreSQL renders for the
event-loop route all come from these (`geomarket.shapes`)."""

from rest_framework import serializers

from geomarket.shapes import DATE, INTEGER, MONEY, TEXT, Field, Kind, Shape

# A share of a total, to six places; none when there is no total.
SHARE = Kind(
    "share",
    serializers.FloatField,
    lambda value: 0.0 if value is None else round(float(value), 6),
    sql=None,
)
# An interval in minutes, to two places.
MINUTES = Kind(
    "minutes",
    serializers.FloatField,
    lambda value: round(value.total_seconds() / 60, 2),
    sql=None,
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
