import re
from datetime import date, timedelta

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from analytics.selectors import COMBINED_PARTS, INTERVALS, DateRange
from analytics.shapes import MERCHANT_ROW, REVENUE_ROW, TOP_PRODUCT_ROW
from geomarket.api.fields import IdField, StrictIntegerField, range_in_order

MAX_RANGE_DAYS = 3660
DEFAULT_DAYS = 30
# Reports cover the platform's history: dates outside these are refused, and none
# brings a default range or the day after `date_to` past Python's calendar.
EARLIEST_DATE = date(1970, 1, 1)
LATEST_DATE = date(9999, 12, 30)


# The same bounds as the OpenAPI schema spells them: years 1970 to 9999, but 9999-12-31.
REPORT_DATE_PATTERN = r"^(?!9999-12-31)(19[7-9][0-9]|[2-9][0-9]{3})-[0-9]{2}-[0-9]{2}$"


def within_report_dates(value: date) -> bool:
    return EARLIEST_DATE <= value <= LATEST_DATE


# The schema's `format: date` (RFC 3339's full-date): Django's date parsing also takes
# "2026-3-1", "20260301" and "2026-W10-3", which the schema's pattern refuses.
_FULL_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


@extend_schema_field({"type": "string", "format": "date", "pattern": REPORT_DATE_PATTERN})
class ReportDateField(serializers.DateField):
    """A date spelled `YYYY-MM-DD` only; its bounds are the serializer's (`_dated`)."""

    def to_internal_value(self, value):
        if isinstance(value, str) and not _FULL_DATE.fullmatch(value):
            self.fail("invalid", format="YYYY-MM-DD")
        return super().to_internal_value(value)


def default_dates(date_from: date | None, date_to: date | None) -> tuple[date, date]:
    """The dates a report covers when `date_from` or `date_to` is not given: the last
    `DEFAULT_DAYS` days up to today (UTC), or up to `date_to`, from `EARLIEST_DATE` at the
    earliest, as a `date_from` given must be."""
    date_to = date_to or timezone.now().date()
    return date_from or max(date_to - timedelta(days=DEFAULT_DAYS - 1), EARLIEST_DATE), date_to


class ReportParamsSerializer(serializers.Serializer):
    """`date_from`/`date_to`: inclusive UTC dates; by default the last 30 days."""

    date_from = ReportDateField(
        required=False,
        help_text=(
            f"The range's first day (UTC), inclusive; by default the {DEFAULT_DAYS} days up to"
            f" `date_to`, from {EARLIEST_DATE.isoformat()} at the earliest. At most"
            f" {MAX_RANGE_DAYS} days before `date_to`."
        ),
    )
    date_to = ReportDateField(
        required=False, help_text="The range's last day (UTC), inclusive; by default today (UTC)."
    )

    def _dated(self, value: date) -> date:
        if not within_report_dates(value):
            raise serializers.ValidationError(
                f"Must be between {EARLIEST_DATE.isoformat()} and {LATEST_DATE.isoformat()}."
            )
        return value

    def validate_date_from(self, value: date) -> date:
        return self._dated(value)

    def validate_date_to(self, value: date) -> date:
        return self._dated(value)

    def validate(self, attrs):
        date_from, date_to = default_dates(attrs.get("date_from"), attrs.get("date_to"))
        # A `date_from` after today with no `date_to` is refused for a date the caller
        # did not give: the message names it.
        end_name = "date_to" if "date_to" in attrs else "today (UTC), the default date_to"
        range_in_order(start_name="date_from", end_name=end_name, start=date_from, end=date_to)
        if (date_to - date_from).days > MAX_RANGE_DAYS:
            raise serializers.ValidationError(
                {"date_from": [f"A report covers at most {MAX_RANGE_DAYS} days."]}
            )
        attrs["range_"] = DateRange(date_from, date_to)
        return attrs


# A filter, as the order list's `merchant_id` is: an unknown merchant's report is empty,
# not a 404.
_MERCHANT_HELP = "Only this merchant's orders; a merchant without any in the range gives "


class TopProductsParamsSerializer(ReportParamsSerializer):
    merchant_id = IdField(required=False, help_text=_MERCHANT_HELP + "no rows.")
    top = StrictIntegerField(
        required=False,
        min_value=1,
        max_value=100,
        default=5,
        help_text="The ranks kept per merchant: its rows of rank 1 to `top`.",
    )


class RevenueParamsSerializer(ReportParamsSerializer):
    merchant_id = IdField(required=False, help_text=_MERCHANT_HELP + "periods of zeros.")
    interval = serializers.ChoiceField(choices=INTERVALS, required=False, default="day")


# Declared in `analytics.shapes`, with the SQL and Python renderings of the same rows.
TopProductRowSerializer = TOP_PRODUCT_ROW.serializer()
RevenueRowSerializer = REVENUE_ROW.serializer()
MerchantRowSerializer = MERCHANT_ROW.serializer()


# The answer of `orders/analytics`: each of its parts' rows, under the part's name.
CombinedReportSerializer = type(
    "CombinedReportSerializer",
    (serializers.Serializer,),
    {part.name: part.shape.serializer()(many=True) for part in COMBINED_PARTS},
)
