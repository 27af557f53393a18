from datetime import datetime

from rest_framework import serializers

from geomarket.api.fields import (
    CategoryRefField,
    GeoJSONAreaField,
    GeoJSONPointField,
    IdField,
    JSONBooleanField,
    MoneyField,
    NearPointSerializer,
    OffsetDateTimeField,
    StrictIntegerField,
    format_datetime,
    format_money,
)
from geomarket.api.responses import json_bytes
from geomarket.geo import area_ewkb_to_geojson
from merchants.models import SLOT_PLAN_BOUNDS, Merchant, validate_timezone
from merchants.selectors import OpenState, open_state, prep_time_s, row_open_state
from merchants.services import PREP_TIME_MIN_SAMPLES, PREP_TIME_WINDOW
from merchants.shapes import CLOCK, MERCHANT_HOURS


class AddressSerializer(serializers.Serializer):
    line1 = serializers.CharField(max_length=200)
    line2 = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    city = serializers.CharField(max_length=100)
    postal_code = serializers.CharField(max_length=20)
    country = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    location = GeoJSONPointField()


class TimezoneField(serializers.CharField):
    """An IANA zone name (`validate_timezone`)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 64)
        super().__init__(**kwargs)
        self.validators.append(validate_timezone)


class MerchantInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    phone = serializers.CharField(max_length=32, required=False, allow_blank=True, default="")
    category_ids = serializers.PrimaryKeyRelatedField(
        source="categories",
        # Catalog's ProductCategory, named by the relation: merchants import no higher app.
        queryset=Merchant.categories.field.related_model.objects.all(),
        pk_field=IdField(),
        many=True,
        required=False,
        default=list,
    )
    address = AddressSerializer()
    is_active = JSONBooleanField(
        required=False,
        default=True,
        help_text="Turned off by an operator, only an operator turns it on again: the"
        " owner's try (a PUT leaving it out, which means true, too) answers 403 with"
        " `code` `merchant_deactivated_by_operator` and changes nothing.",
    )
    require_handover_code = JSONBooleanField(required=False, default=False)
    # No default: its hours are read in it (`hours/` writes it too), so a PUT that leaves
    # it out keeps it rather than moving the hours to another zone.
    timezone = TimezoneField(
        required=False,
        help_text="The IANA zone its hours are read in: when left out, the platform's"
        " default (UTC) on creation, unchanged on a PUT or PATCH.",
    )


PREP_TIME_HELP = (
    "Seconds it takes to prepare an order, as ETAs count it: the median of its orders'"
    f" time from confirmed to ready over the last {PREP_TIME_WINDOW.days} days when there"
    f" are at least {PREP_TIME_MIN_SAMPLES}, else the platform's default."
)


class MerchantOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    owner_id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField()
    phone = serializers.CharField()
    category_ids = serializers.SerializerMethodField()
    address = AddressSerializer()
    location = GeoJSONPointField()
    is_active = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    timezone = serializers.CharField(help_text="The IANA zone its hours are read in.")
    open_now = serializers.SerializerMethodField()
    next_opening_at = serializers.SerializerMethodField(
        help_text="When it next opens, within 14 days; null while open or if not then."
    )
    require_handover_code = serializers.BooleanField(
        help_text="Whether `delivered` needs the code its customer is given at pickup."
    )
    prep_time_s = serializers.SerializerMethodField(help_text=PREP_TIME_HELP)

    def _open_state(self, merchant) -> OpenState:
        # Read with the merchant by the merchants' selectors (`_as_shown`).
        return open_state(open_from=merchant.open_from, now=merchant.shown_at)

    def get_open_now(self, merchant) -> bool:
        return self._open_state(merchant).open_now

    def get_next_opening_at(self, merchant) -> datetime | None:
        opening = self._open_state(merchant).next_opening_at
        return None if opening is None else format_datetime(opening)

    def get_prep_time_s(self, merchant) -> int:
        return prep_time_s(learned=merchant.learned_prep_time_s)

    def get_category_ids(self, merchant) -> list[int]:
        # Read with the merchant by the merchants' selectors (`_with_category_ids`).
        ids = getattr(merchant, "category_id_list", None)
        if ids is not None:
            return list(ids)
        return sorted(category.pk for category in merchant.categories.all())


class MerchantFilterSerializer(serializers.Serializer):
    category = CategoryRefField(required=False)
    q = serializers.CharField(required=False, max_length=200)


class DeliveryZoneInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    area = GeoJSONAreaField()
    delivery_fee = MoneyField(max_digits=8)
    min_order_amount = MoneyField(required=False, default="0.00")
    is_active = JSONBooleanField(required=False, default=True)


class DeliveryZoneOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    merchant_id = serializers.IntegerField()
    name = serializers.CharField()
    area = GeoJSONAreaField()
    delivery_fee = MoneyField(max_digits=8)
    min_order_amount = MoneyField()
    is_active = serializers.BooleanField()


def zone_row(row: dict) -> dict:
    """`DeliveryZoneOutputSerializer`'s rendering of a zone read as `_ZONE_COLUMNS` (the
    area as EWKB), without a serializer built per zone."""
    return {
        "id": row["id"],
        "merchant_id": row["merchant_id"],
        "name": row["name"],
        "area": area_ewkb_to_geojson(row["area"]),
        "delivery_fee": format_money(row["delivery_fee"]),
        "min_order_amount": format_money(row["min_order_amount"]),
        "is_active": row["is_active"],
    }


def zone_rows(rows) -> list[dict]:
    return [zone_row(row) for row in rows]


class MerchantsNearbyParamsSerializer(NearPointSerializer):
    pass


class DeliveringToParamsSerializer(NearPointSerializer):
    radius = None
    limit = StrictIntegerField(required=False, default=100, min_value=1, max_value=500)


class MerchantNearbyOutputSerializer(MerchantOutputSerializer):
    """Schema only: the geo answers are rendered from SQL rows by `merchant_row`."""

    category_ids = serializers.ListField(child=serializers.IntegerField())
    distance_m = serializers.FloatField()


class MerchantDeliveringOutputSerializer(MerchantNearbyOutputSerializer):
    """Schema only: delivering-to is rendered by PostgreSQL (`MERCHANT_DELIVERING`)."""

    zone_id = serializers.IntegerField()
    delivery_fee = MoneyField(max_digits=8)
    min_order_amount = MoneyField()


def merchant_output(row: dict) -> dict:
    """`MerchantOutputSerializer`'s rendering of a merchant read as the merchants'
    selectors read it (`_MERCHANT_SHOWN_COLUMNS`): its address's point is the merchant's
    `location`, kept equal by the database."""
    state = row_open_state(row)
    location = {"type": "Point", "coordinates": [row["lng"], row["lat"]]}
    return {
        "id": row["id"],
        "owner_id": row["owner_id"],
        "name": row["name"],
        "description": row["description"],
        "phone": row["phone"],
        "category_ids": row["category_ids"],
        "address": {
            "line1": row["line1"],
            "line2": row["line2"],
            "city": row["city"],
            "postal_code": row["postal_code"],
            "country": row["country"],
            "location": location,
        },
        "location": location,
        "is_active": row["is_active"],
        "created_at": format_datetime(row["created_at"]),
        "timezone": row["timezone"],
        "open_now": state.open_now,
        "next_opening_at": state.next_opening_at and format_datetime(state.next_opening_at),
        "require_handover_code": row["require_handover_code"],
        "prep_time_s": prep_time_s(learned=row["learned_prep_time_s"]),
    }


def merchant_row(row: dict) -> dict:
    """A merchant of the geo answers: `merchant_output` and its distance."""
    return {**merchant_output(row), "distance_m": round(row["distance_m"], 2)}


def merchants_nearby_body(rows: list[dict]) -> bytes:
    """The merchants/nearby answer of its rows (`merchants_nearby_statement`), as the view
    and the event loop's route (`merchants.lane_routes`) both send it."""
    return json_bytes({"results": [merchant_row(row) for row in rows]})


# --- opening hours, closures, slot plans ----------------------------------------------


# Minutes of the day, local wall-clock time (`CLOCK`); "24:00" is no time: "00:00" closes
# at midnight (after `opens`, so on the next day).
class OpeningIntervalSerializer(serializers.Serializer):
    weekday = StrictIntegerField(min_value=0, max_value=6, help_text="0 = Monday")
    opens = CLOCK.field()
    closes = CLOCK.field()


class MerchantHoursSerializer(serializers.Serializer):
    """A merchant's week. An interval whose `closes` is not after `opens` runs past
    midnight into the next day; intervals must not overlap. A merchant with no
    intervals is always open, except during its closures."""

    timezone = TimezoneField()
    weekly = OpeningIntervalSerializer(many=True, max_length=7 * 24)


def hours_output(hours: dict) -> dict:
    """`MerchantHoursSerializer`'s rendering of `merchant_hours` (`MERCHANT_HOURS`)."""
    return MERCHANT_HOURS.render((hours["timezone"], hours["weekly"]))


class ClosureSerializer(serializers.Serializer):
    """A time the merchant is closed, `[starts_at, ends_at)`, whatever its hours say;
    `ends_at` must be after `starts_at` (`closure_create`)."""

    id = serializers.IntegerField(read_only=True)
    starts_at = OffsetDateTimeField()
    ends_at = OffsetDateTimeField()
    reason = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")

    def to_representation(self, closure):
        return super().to_representation(
            {
                "id": closure.pk,
                "starts_at": closure.period.lower,
                "ends_at": closure.period.upper,
                "reason": closure.reason,
            }
        )


def _datetime_or_none(value: datetime | None) -> str | None:
    return None if value is None else format_datetime(value)


def closure_rows(rows) -> list[dict]:
    """`ClosureSerializer`'s rendering of closures read as `id, starts_at, ends_at,
    reason` (`closure_page`); an unbounded end is null."""
    return [
        {
            "id": row["id"],
            "starts_at": format_datetime(row["starts_at"]),
            "ends_at": _datetime_or_none(row["ends_at"]),
            "reason": row["reason"],
        }
        for row in rows
    ]


def _plan_field(name: str) -> StrictIntegerField:
    low, high = SLOT_PLAN_BOUNDS[name]
    return StrictIntegerField(min_value=low, max_value=high)


class SlotPlanSerializer(serializers.Serializer):
    slot_minutes = _plan_field("slot_minutes")
    capacity = _plan_field("capacity")
    lead_minutes = _plan_field("lead_minutes")
    horizon_days = _plan_field("horizon_days")


def slot_plan_output(plan: tuple) -> dict:
    """`SlotPlanSerializer`'s rendering of a plan read by `slot_plan`."""
    return dict(zip(SlotPlanSerializer._declared_fields, plan, strict=True))


class SlotDayParamsSerializer(serializers.Serializer):
    date = serializers.DateField(
        input_formats=["%Y-%m-%d"], help_text="A local date of the merchant, YYYY-MM-DD."
    )


class SlotSerializer(serializers.Serializer):
    starts_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField()
    capacity = serializers.IntegerField()
    booked = serializers.IntegerField(help_text="Orders booked into the slot.")
    available = serializers.IntegerField(help_text="capacity - booked, never below 0.")
