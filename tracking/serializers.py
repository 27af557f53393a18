from rest_framework import serializers

from delivery.shapes import TRACKED_COURIER
from geomarket.api.fields import format_datetime
from orders.models import OrderStatus
from orders.shapes import HANDOVER_CODE

TrackedCourierSerializer = TRACKED_COURIER.serializer()


class OrderTrackingSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=OrderStatus.choices)
    courier = TrackedCourierSerializer(
        allow_null=True,
        help_text="The order's courier, or null when there is none or the caller may not "
        "see it: a customer sees it while the order is picked_up, the merchant's owner "
        "while ready or picked_up, the courier and operators always.",
    )
    eta_s = serializers.IntegerField(
        allow_null=True,
        help_text="Seconds until delivery, estimated; null once delivered, cancelled or rejected.",
    )
    updated_at = serializers.DateTimeField()
    handover_code = serializers.CharField(allow_null=True, help_text=HANDOVER_CODE.help_text)


def _maybe_moment(value):
    return None if value is None else format_datetime(value)


def tracking_payload(tracking) -> dict:
    """`OrderTrackingSerializer`'s answer for a `tracking.selectors.Tracking`, built
    directly: the serializer, built per request with its nested courier, cost more CPU
    than the statement. The serializer remains the schema; a test holds the two equal."""
    courier = tracking.courier
    return {
        "status": tracking.status,
        "courier": None
        if courier is None
        else {
            "id": courier.id,
            "name": courier.name,
            "vehicle": courier.vehicle,
            "location": None
            if courier.location is None
            else {"type": "Point", "coordinates": list(courier.location)},
            "location_updated_at": _maybe_moment(courier.location_updated_at),
        },
        "eta_s": tracking.eta_s,
        "updated_at": format_datetime(tracking.updated_at),
        "handover_code": tracking.handover_code,
    }


class StreamTicketSerializer(serializers.Serializer):
    ticket = serializers.CharField(help_text="Pass as `?ticket=` to the order's stream: once.")
    expires_at = serializers.DateTimeField()
