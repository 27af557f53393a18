from rest_framework import serializers

from delivery.models import Vehicle
from geomarket.api.fields import GeoJSONPointField
from orders.models import OrderStatus


class TrackedCourierSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    vehicle = serializers.ChoiceField(choices=Vehicle.choices)
    location = GeoJSONPointField(allow_null=True)
    location_updated_at = serializers.DateTimeField(allow_null=True)


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


class StreamTicketSerializer(serializers.Serializer):
    ticket = serializers.CharField(help_text="Pass as `?ticket=` to the order's stream: once.")
    expires_at = serializers.DateTimeField()
