from rest_framework import serializers

from geomarket.api.fields import GeoJSONPointField, MoneyField
from merchants.serializers import AddressSerializer
from orders.models import OrderStatus


class OrderLineSerializer(serializers.Serializer):
    product_id = serializers.IntegerField(min_value=1)
    quantity = serializers.IntegerField(min_value=1, max_value=999)


class DeliveryAddressSerializer(AddressSerializer):
    pass


class OrderCreateSerializer(serializers.Serializer):
    merchant_id = serializers.IntegerField(min_value=1)
    items = OrderLineSerializer(many=True, allow_empty=False, max_length=100)
    delivery_address = DeliveryAddressSerializer()

    def validate_items(self, items):
        ids = [item["product_id"] for item in items]
        if len(set(ids)) != len(ids):
            raise serializers.ValidationError("Each product may appear only once.")
        return items


class OrderStatusInputSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=OrderStatus.choices)
    reason = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class OrderMerchantSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class OrderItemSerializer(serializers.Serializer):
    product_id = serializers.IntegerField()
    title = serializers.CharField()
    unit_price = MoneyField()
    quantity = serializers.IntegerField()
    line_total = MoneyField(max_digits=12)


class ShortageSerializer(serializers.Serializer):
    product_id = serializers.IntegerField()
    requested = serializers.IntegerField()
    available = serializers.IntegerField()


class OrderAddressSerializer(serializers.Serializer):
    line1 = serializers.CharField()
    line2 = serializers.CharField()
    city = serializers.CharField()
    postal_code = serializers.CharField()
    country = serializers.CharField()
    location = GeoJSONPointField()


class OrderHistorySerializer(serializers.Serializer):
    from_status = serializers.CharField()
    status = serializers.CharField(source="to_status")
    actor_id = serializers.IntegerField(allow_null=True)
    reason = serializers.CharField()
    at = serializers.DateTimeField(source="created_at")


class OrderOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=OrderStatus.choices)
    merchant = OrderMerchantSerializer()
    items = OrderItemSerializer(many=True)
    subtotal = MoneyField(max_digits=12)
    delivery_fee = MoneyField(max_digits=8)
    total = MoneyField(max_digits=12)
    rejection_reason = serializers.CharField()
    shortages = ShortageSerializer(many=True)
    delivery_address = OrderAddressSerializer()
    courier_id = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    delivered_at = serializers.DateTimeField(allow_null=True)


class OrderDetailSerializer(OrderOutputSerializer):
    history = OrderHistorySerializer(many=True)


class OrderFilterSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=OrderStatus.choices, required=False)
    merchant_id = serializers.IntegerField(required=False, min_value=1)
    created_after = serializers.DateTimeField(required=False)
    created_before = serializers.DateTimeField(required=False)


class MerchantOrderSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    created_at = serializers.DateTimeField()
    total_items = serializers.IntegerField()
    total = MoneyField(max_digits=12)


class OrderStatsParamsSerializer(serializers.Serializer):
    merchant_id = serializers.IntegerField(required=False, min_value=1)


class OrderStatsSerializer(serializers.Serializer):
    by_status = serializers.DictField(child=serializers.IntegerField())
    orders = serializers.IntegerField()
    revenue = MoneyField(max_digits=14)
