from datetime import UTC, datetime, timedelta

from django.utils import timezone
from rest_framework import serializers

from delivery.models import CourierStatus, Vehicle
from delivery.selectors import TRACK_DEFAULT_WINDOW, TRACK_POINTS_MAX
from delivery.shapes import COURIER, TRACK_POINT
from geomarket.accounts.models import User
from geomarket.api.fields import (
    FiniteFloatField,
    GeoJSONPointField,
    IdField,
    StrictIntegerField,
    TimestampField,
    range_in_order,
)
from geomarket.api.validation import prebuilt
from geomarket.shapes import DATETIME, FLOAT, INTEGER, Field, Shape

CourierOutputSerializer = COURIER.serializer()


class CourierCreateSerializer(serializers.Serializer):
    user_id = serializers.PrimaryKeyRelatedField(
        source="user", queryset=User.objects.all(), pk_field=IdField()
    )
    name = serializers.CharField(max_length=100)
    vehicle = serializers.ChoiceField(choices=Vehicle.choices)
    capacity = StrictIntegerField(min_value=1, max_value=20, required=False, default=1)
    status = serializers.ChoiceField(
        choices=CourierStatus.choices, required=False, default=CourierStatus.OFFLINE
    )


class CourierUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    vehicle = serializers.ChoiceField(choices=Vehicle.choices)
    capacity = StrictIntegerField(min_value=1, max_value=20)
    status = serializers.ChoiceField(choices=CourierStatus.choices)


class CourierSelfUpdateSerializer(serializers.Serializer):
    status = serializers.ChoiceField(
        choices=[CourierStatus.AVAILABLE, CourierStatus.OFFLINE],
        error_messages={"invalid_choice": "A courier may set only available or offline."},
    )


class CourierFilterSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=CourierStatus.choices, required=False)


courier_filters = prebuilt(CourierFilterSerializer)


# A device's clock may run a little ahead of ours; a ping from further ahead, or older
# than an hour, is refused rather than kept with a time nobody can trust.
PING_CLOCK_SKEW = timedelta(seconds=30)
PING_MAX_AGE = timedelta(hours=1)


class LocationPingSerializer(serializers.Serializer):
    lat = FiniteFloatField(min_value=-90, max_value=90)
    lng = FiniteFloatField(min_value=-180, max_value=180)
    heading = FiniteFloatField(
        min_value=0, max_value=360, required=False, help_text="Degrees clockwise from north."
    )
    speed_mps = FiniteFloatField(min_value=0, max_value=100, required=False)
    accuracy_m = FiniteFloatField(min_value=0, max_value=10_000, required=False)
    recorded_at = serializers.DateTimeField(
        required=False,
        help_text="When the device took the point (ISO 8601); by default, when the server "
        "receives it. At most 30 s ahead of the server's clock and 1 h behind it.",
    )

    def validate_recorded_at(self, value):
        now = timezone.now()
        if value > now + PING_CLOCK_SKEW:
            raise serializers.ValidationError("A ping cannot be recorded in the future.")
        if value < now - PING_MAX_AGE:
            raise serializers.ValidationError("A ping older than an hour is not taken.")
        return value


# What a ping answers, declared once: the schema's serializer and the answer rendered by
# the view and by the event-loop route.
LOCATION_PING = Shape(
    "LocationPingOutput",
    (
        Field("courier_id", INTEGER),
        Field("lat", FLOAT),
        Field("lng", FLOAT),
        Field("recorded_at", DATETIME),
        Field(
            "location_updated_at",
            DATETIME,
            help_text="The time of the courier's current point: older than recorded_at's "
            "when the ping was late (kept in the track, the courier not moved).",
        ),
    ),
)
LocationPingOutputSerializer = LOCATION_PING.serializer()

# Pings are the busiest write: the body's serializer fields are built once, not per ping.
ping_validated = prebuilt(LocationPingSerializer)


def ping_answer(ping: dict) -> dict:
    """The answer to a ping, from `courier_ping`'s (or its statement's) outcome."""
    return LOCATION_PING.render([ping[name] for name in LOCATION_PING.names])


_EARLIEST = datetime.min.replace(tzinfo=UTC)


def _window_start(until: datetime) -> datetime:
    """The default `since`: a window before `until`, from the first moment Python can
    hold when `until` is closer to it than that (`until=0001-01-01T00:00:00Z`)."""
    if until - _EARLIEST < TRACK_DEFAULT_WINDOW:
        return _EARLIEST
    return until - TRACK_DEFAULT_WINDOW


class TrackParamsSerializer(serializers.Serializer):
    since = TimestampField(in_query=True, required=False, help_text="By default 24 h before until.")
    until = TimestampField(in_query=True, required=False, help_text="By default now.")

    def validate(self, attrs):
        until = attrs.get("until") or timezone.now()
        since = attrs.get("since") or _window_start(until)
        range_in_order(start_name="since", end_name="until", start=since, end=until)
        return {"since": since, "until": until}


TrackPointSerializer = TRACK_POINT.serializer()


class TrackOutputSerializer(serializers.Serializer):
    points = TrackPointSerializer(
        many=True,
        help_text=f"In time order; at most the first {TRACK_POINTS_MAX:,} of the window.",
    )
    distance_m = serializers.FloatField(
        help_text="Geodesic length (WGS84) of the whole window's path, in metres."
    )
    truncated = serializers.BooleanField(
        help_text=f"The window holds more than {TRACK_POINTS_MAX:,} points."
    )


class CandidatesParamsSerializer(serializers.Serializer):
    limit = StrictIntegerField(min_value=1, max_value=100, required=False, default=10)


candidates_params = prebuilt(CandidatesParamsSerializer)


class CandidateSerializer(serializers.Serializer):
    courier_id = serializers.IntegerField()
    name = serializers.CharField()
    vehicle = serializers.CharField()
    distance_m = serializers.FloatField()
    eta_s = serializers.IntegerField()


class RefusalSerializer(serializers.Serializer):
    """A domain error's answer (`geomarket.api.exceptions`), for a status the schema does
    not give the operation by itself."""

    detail = serializers.CharField()
    code = serializers.CharField()


class PriorityAssignmentInputSerializer(serializers.Serializer):
    order_ids = serializers.ListField(
        child=IdField(),
        required=False,
        max_length=1000,
        help_text="Only these orders (by default every waiting one); an unknown id is a 400.",
    )
    max_distance_m = FiniteFloatField(min_value=1, max_value=100_000, required=False)


class AssignmentSerializer(serializers.Serializer):
    order_id = serializers.IntegerField()
    courier_id = serializers.IntegerField()
    distance_m = serializers.FloatField()


class PriorityAssignmentOutputSerializer(serializers.Serializer):
    assignments = AssignmentSerializer(many=True)
    unassigned = serializers.ListField(
        child=serializers.IntegerField(),
        help_text="The waiting orders this call found no free courier in reach for, oldest "
        "first; orders of `order_ids` that were not waiting are in neither list.",
    )
    total_distance_m = serializers.FloatField()


class EtaDestinationSerializer(serializers.Serializer):
    lat = FiniteFloatField(min_value=-90, max_value=90)
    lng = FiniteFloatField(min_value=-180, max_value=180)


class EtaInputSerializer(serializers.Serializer):
    destination = EtaDestinationSerializer(required=False)
    merchant_ids = serializers.ListField(
        child=IdField(), min_length=1, max_length=50, required=False
    )
    order_id = IdField(required=False)

    def validate(self, attrs):
        by_order = "order_id" in attrs
        by_destination = "destination" in attrs or "merchant_ids" in attrs
        if by_order == by_destination:
            raise serializers.ValidationError(
                "Send either {destination, merchant_ids} or {order_id}."
            )
        if by_destination and not ("destination" in attrs and "merchant_ids" in attrs):
            raise serializers.ValidationError("Both destination and merchant_ids are required.")
        return attrs


class EtaResultSerializer(serializers.Serializer):
    merchant_id = serializers.IntegerField()
    distance_m = serializers.FloatField()
    eta_s = serializers.IntegerField()
    provider = serializers.CharField()
    degraded = serializers.BooleanField()


class EtaOutputSerializer(serializers.Serializer):
    results = EtaResultSerializer(many=True)
    elapsed_ms = serializers.FloatField()


class StreamLocationSerializer(serializers.Serializer):
    """The data of an order stream's `location` event: the courier's point, sent by its
    ping to the streams of its active orders (`courier_ping`)."""

    courier_id = serializers.IntegerField()
    location = GeoJSONPointField()
    recorded_at = serializers.DateTimeField()


class StreamEtaSerializer(serializers.Serializer):
    """The data of an order stream's `eta` event, sent with each courier point."""

    eta_s = serializers.IntegerField(
        allow_null=True, help_text="Seconds until delivery, estimated as the tracking answer's."
    )
