"""The rows of the operator reports, each declared once: the schema's serializers, the
CSV columns, the rows built in Python (for CSV) and the JSON answers PostgreSQL renders
(for Django's views and the event-loop route) all come from these (`geomarket.shapes`)."""

import json
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal

from rest_framework import serializers

from geomarket.shapes import CENT, DATE, INTEGER, MONEY, TEXT, Field, Kind, Shape


def _minutes(value: timedelta | None) -> float | None:
    # As PostgreSQL rounds the interval's exact seconds (a numeric) over 60.
    if value is None:
        return None
    seconds = Decimal(value.days * 86400 + value.seconds) + Decimal(value.microseconds) / 10**6
    return float((seconds / 60).quantize(CENT, ROUND_HALF_UP))


def ratio(name: str, *, places: int, missing: float | None) -> Kind:
    """A ratio of two sums, to `places` places; `missing` when it has no denominator.

    Rounded as PostgreSQL rounds the numeric: half away from zero, on the exact decimal.
    The SQL's text keeps trailing zeros (0.250000 for 0.25): the same number in JSON."""
    quantum = Decimal(1).scaleb(-places)

    def python(value: Decimal | None) -> float | None:
        return missing if value is None else float(Decimal(value).quantize(quantum, ROUND_HALF_UP))

    return Kind(
        name,
        serializers.FloatField,
        python,
        sql=f"COALESCE(round({{value}}::numeric, {places})::text, '{json.dumps(missing)}')",
    )


# A share of a total, to six places; 0 when there is no total.
SHARE = ratio("share", places=6, missing=0.0)
# A part over its whole, to four places; null when the whole is 0.
RATE = ratio("rate", places=4, missing=None)
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
        Field("merchant_name", TEXT, help_text="The merchant's name now."),
        Field("product_id", INTEGER),
        Field(
            "title",
            TEXT,
            help_text="The product's title now (its order lines keep the title it sold under).",
        ),
        Field("units_sold", INTEGER),
        Field("revenue", MONEY, help_text="The sum of its line totals."),
        Field(
            "rank",
            INTEGER,
            help_text=(
                "Dense rank by units sold within the merchant, 1 = best: products selling"
                " as many units share a rank, and the next rank follows without a gap."
                " Rows of a rank come by product id."
            ),
        ),
    ),
)

REVENUE_ROW = Shape(
    "RevenueRow",
    (
        Field(
            "period",
            DATE,
            help_text=(
                "The period's first day: the day, the Monday of its ISO week, or the first"
                " of its month. A range starting or ending inside a week or month still"
                " labels it so, and counts only the range's days of it."
            ),
        ),
        Field("orders", INTEGER),
        Field("revenue", MONEY, help_text="The orders' totals (lines plus delivery fee)."),
        Field(
            "running_revenue",
            MONEY,
            help_text="The revenue from the range's first period through this one.",
        ),
        Field(
            "moving_avg_7",
            MONEY,
            help_text=(
                "The mean revenue of this period and the six before it; in the range's"
                " first six periods, of this one and those before it in the range."
            ),
        ),
    ),
)

MERCHANT_ROW = Shape(
    "MerchantRow",
    (
        Field("merchant_id", INTEGER),
        Field("name", TEXT, help_text="The merchant's name now."),
        # The merchants' `orders` are their orders' relation.
        Field("orders", INTEGER, source="delivered_orders"),
        Field("revenue", MONEY, help_text="The orders' totals (lines plus delivery fee)."),
        Field(
            "revenue_share",
            SHARE,
            help_text=(
                "Its revenue over every merchant's in the range, rounded half up to 6"
                " places (so the shares' sum may miss 1 by the rounding)."
            ),
        ),
        Field(
            "rank",
            INTEGER,
            help_text=(
                "Dense rank by revenue, 1 = highest: merchants with equal revenue share a"
                " rank, and the next rank follows without a gap."
            ),
        ),
        Field(
            "avg_delivery_minutes",
            MINUTES,
            source="avg_delivery",
            help_text=(
                "The mean time from placing (`created_at`) to delivery (`delivered_at`) of"
                " its delivered orders, in minutes to 2 places. Null when the merchant only"
                " failed orders in the range."
            ),
            null=True,
        ),
        Field(
            "failed",
            INTEGER,
            source="failed_orders",
            help_text=(
                "The merchant's orders that failed in the range, dated by the time they"
                " failed; one returned since still counts. They are not in `orders` nor"
                " `revenue`."
            ),
        ),
        Field(
            "failure_rate",
            RATE,
            help_text=(
                "failed / (orders + failed), rounded half up to 4 places. Never undefined:"
                " a merchant is listed only when it delivered or failed an order in the"
                " range."
            ),
        ),
    ),
)
