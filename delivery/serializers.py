from rest_framework import serializers

from delivery.models import CourierStatus, Vehicle
from geomarket.accounts.models import User
from geomarket.api.fields import FiniteFloatField, GeoJSONPointField, IdField, StrictIntegerField


class CourierOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    user_id = serializers.IntegerField()
    name = serializers.CharField()
    vehicle = serializers.ChoiceField(choices=Vehicle.choices)
    status = serializers.ChoiceField(choices=CourierStatus.choices)
    location = GeoJSONPointField(allow_null=True)
    location_updated_at = serializers.DateTimeField(allow_null=True)
    capacity = serializers.IntegerField()
    active_orders = serializers.IntegerField()


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


class LocationPingSerializer(serializers.Serializer):
    lat = FiniteFloatField(min_value=-90, max_value=90)
    lng = FiniteFloatField(min_value=-180, max_value=180)


class LocationPingOutputSerializer(serializers.Serializer):
    courier_id = serializers.IntegerField()
    lat = serializers.FloatField()
    lng = serializers.FloatField()
    location_updated_at = serializers.DateTimeField()


class CandidatesParamsSerializer(serializers.Serializer):
    limit = StrictIntegerField(min_value=1, max_value=100, required=False, default=10)


class CandidateSerializer(serializers.Serializer):
    courier_id = serializers.IntegerField()
    name = serializers.CharField()
    vehicle = serializers.CharField()
    distance_m = serializers.FloatField()
    eta_s = serializers.IntegerField()


class PriorityAssignmentInputSerializer(serializers.Serializer):
    order_ids = serializers.ListField(child=IdField(), required=False, max_length=1000)
    max_distance_m = FiniteFloatField(min_value=1, max_value=100_000, required=False)


class AssignmentSerializer(serializers.Serializer):
    order_id = serializers.IntegerField()
    courier_id = serializers.IntegerField()
    distance_m = serializers.FloatField()


class PriorityAssignmentOutputSerializer(serializers.Serializer):
    assignments = AssignmentSerializer(many=True)
    unassigned = serializers.ListField(child=serializers.IntegerField())
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
