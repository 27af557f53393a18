"""The shapes of merchants' answers that PostgreSQL renders (`geomarket.shapes`):
delivering-to answers up to 500 merchants of some twenty fields each, which cost more to
read into Python and render there than the statement finding them."""

from rest_framework import serializers

from geomarket.api.fields import format_datetime
from geomarket.shapes import BOOLEAN, INTEGER, METRES, MONEY, POINT, Field, Kind, Shape

# Text as `json.dumps` renders it (to_json's escapes are its own), as this answer always
# has: U+2028 and U+2029 as they are, which JSON allows. `TEXT` escapes them too for
# DRF's renderer, with two replace() a value: a millisecond of a hundred merchants.
PLAIN_TEXT = Kind(
    "plain text",
    serializers.CharField,
    lambda value: value,
    "COALESCE(to_json({value})::text, 'null')",
)
# Ids in a JSON array ([] for none): array_to_json's text is json.dumps's, compact.
INTEGER_LIST = Kind(
    "integer list",
    lambda **options: serializers.ListField(child=serializers.IntegerField(), **options),
    lambda value: None if value is None else list(value),
    "COALESCE(array_to_json({value})::text, 'null')",
)
# A time as `format_datetime` renders it, or null: `DATETIME`'s text from one to_char
# (whole seconds drop the microseconds) instead of two and a date_part, a few
# microseconds less a value.
INSTANT = Kind(
    "instant",
    lambda **options: serializers.DateTimeField(allow_null=True, **options),
    lambda value: None if value is None else format_datetime(value),
    "COALESCE('\"' || replace(to_char({value} AT TIME ZONE 'UTC',"
    " 'YYYY-MM-DD\"T\"HH24:MI:SS.US'), '.000000', '') || 'Z\"', 'null')",
)


def location_json_sql(location: str) -> str:
    """The JSON text of the geography point `location` (`POINT`), for a row column that
    `MERCHANT_DELIVERING` sends as it is: the answer shows the point twice."""
    return POINT.sql.format(value=location)


# The merchant's address as its answer shows it: its point is the merchant's `location`.
MERCHANT_ADDRESS = Shape(
    "MerchantAddress",
    (
        Field("line1", PLAIN_TEXT),
        Field("line2", PLAIN_TEXT),
        Field("city", PLAIN_TEXT),
        Field("postal_code", PLAIN_TEXT),
        Field("country", PLAIN_TEXT),
        Field("location", POINT, source="location_json", stored=True),
    ),
)

# A merchant as delivering-to shows it, the fields that depend on the merchant's rows alone
# (its own, its address's, its categories'): kept rendered in its row
# (`merchants.delivering_sql`), so that an answer of a hundred merchants joins and renders
# none of them.
MERCHANT_SHOWN = Shape(
    "MerchantShown",
    (
        Field("id", INTEGER),
        Field("owner_id", INTEGER),
        Field("name", PLAIN_TEXT),
        Field("description", PLAIN_TEXT),
        Field("phone", PLAIN_TEXT),
        Field("category_ids", INTEGER_LIST),
        Field("address", shape=MERCHANT_ADDRESS),
        Field("location", POINT, source="location_json", stored=True),
        Field("is_active", BOOLEAN),
        Field("created_at", INSTANT),
        Field("timezone", PLAIN_TEXT),
    ),
)

# The rest of a result, rendered for each answer: the open state at its instant, the
# distance and the covering zone.
DELIVERING_EXTRA = Shape(
    "DeliveringExtra",
    (
        Field("open_now", BOOLEAN),
        Field("next_opening_at", INSTANT),
        Field("require_handover_code", BOOLEAN),
        Field("prep_time_s", INTEGER),
        Field("distance_m", METRES),
        Field("zone_id", INTEGER),
        Field("delivery_fee", MONEY),
        Field("min_order_amount", MONEY),
    ),
)

# One result of delivering-to (`merchants.serializers.merchant_row`'s fields and order,
# which `MerchantDeliveringOutputSerializer` declares for the schema).
MERCHANT_DELIVERING = Shape(
    "MerchantDelivering", (*MERCHANT_SHOWN.fields, *DELIVERING_EXTRA.fields)
)
