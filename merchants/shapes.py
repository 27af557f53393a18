"""The shapes of merchants' answers that PostgreSQL renders (`geomarket.shapes`):
delivering-to answers up to 500 merchants of some twenty fields each, which cost more to
read into Python and render there than the statement finding them."""

from dataclasses import replace

from rest_framework import serializers

from geomarket.api.fields import format_datetime
from geomarket.shapes import (
    BOOLEAN,
    DATETIME,
    GEOJSON_POINT,
    INTEGER,
    METRES,
    MONEY,
    POINT,
    TEXT,
    Field,
    Kind,
    Shape,
)

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


def location_json_sql(location: str, kind: Kind = POINT) -> str:
    """The JSON text of the geography point `location` (`POINT`, or `kind`), for a row
    column that an answer's shape sends as it is (`location_json`): the answer shows the
    point twice."""
    return kind.sql.format(value=location)


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

# What a merchant's answer shows after `MERCHANT_SHOWN`, read at the answer's instant: its
# open state (`merchants.selectors.OpenState`), then fields of its row that delivering-to
# does not keep rendered.
MERCHANT_STATE = Shape(
    "MerchantState",
    (
        Field("open_now", BOOLEAN),
        Field("next_opening_at", INSTANT),
        Field("require_handover_code", BOOLEAN),
        Field("prep_time_s", INTEGER),
    ),
)

# The rest of a result, rendered for each answer: the open state at its instant, the
# distance and the covering zone.
DELIVERING_EXTRA = Shape(
    "DeliveringExtra",
    (
        *MERCHANT_STATE.fields,
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


# The kinds of `MERCHANT_SHOWN` and what DRF's renderer writes for them: text with U+2028
# and U+2029 escaped, a point's integral coordinates with their ".0".
_AS_DRF_RENDERS = {PLAIN_TEXT: TEXT, POINT: GEOJSON_POINT}


def _as_drf_renders(shape: Shape) -> Shape:
    """`shape` with its kinds as DRF's renderer writes them, nested shapes too."""
    return replace(
        shape,
        fields=tuple(
            replace(item, shape=_as_drf_renders(item.shape))
            if item.shape is not None
            else replace(item, kind=_AS_DRF_RENDERS.get(item.kind, item.kind))
            for item in shape.fields
        ),
    )


# A merchant's answer (its detail, the public list's results: `MerchantOutputSerializer`'s
# fields and order), rendered by PostgreSQL from a row read as the selectors read it: the
# fields delivering-to keeps rendered, written as DRF writes them, then its state. Its
# `location_json` column is `GEOJSON_POINT`'s text (`location_json_sql`).
MERCHANT_OUTPUT = Shape(
    "MerchantOutput", (*_as_drf_renders(MERCHANT_SHOWN).fields, *MERCHANT_STATE.fields)
)

# A local wall-clock time of day, "HH:MM" (`MerchantHoursSerializer`'s times).
CLOCK_FORMAT = "%H:%M"
CLOCK = Kind(
    "clock",
    lambda **options: serializers.TimeField(
        format=CLOCK_FORMAT, input_formats=[CLOCK_FORMAT], **options
    ),
    lambda value: value.strftime(CLOCK_FORMAT),
    "('\"' || to_char({value}, 'HH24:MI') || '\"')",
)

# A merchant's week as its hours answer shows it (`MerchantHoursSerializer`), from its
# time zone and its intervals in (weekday, opens) order.
OPENING_INTERVAL = Shape(
    "OpeningInterval",
    (Field("weekday", INTEGER), Field("opens", CLOCK), Field("closes", CLOCK)),
)
MERCHANT_HOURS = Shape(
    "MerchantHours",
    (Field("timezone", TEXT), Field("weekly", shape=OPENING_INTERVAL, many=True)),
)

# A slot of a day's answer (`SlotSerializer`'s fields): PostgreSQL renders the day's slots
# as JSON text, as reading their times into Python and rendering them cost more than
# finding them.
SLOT = Shape(
    "Slot",
    (
        Field("starts_at", DATETIME),
        Field("ends_at", DATETIME),
        Field("capacity", INTEGER),
        Field("booked", INTEGER),
        Field("available", INTEGER),
    ),
)
