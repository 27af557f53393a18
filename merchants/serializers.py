from rest_framework import serializers

from catalog.models import ProductCategory
from geomarket.api.fields import GeoJSONAreaField, GeoJSONPointField, MoneyField


class AddressSerializer(serializers.Serializer):
    line1 = serializers.CharField(max_length=200)
    line2 = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    city = serializers.CharField(max_length=100)
    postal_code = serializers.CharField(max_length=20)
    country = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    location = GeoJSONPointField()


class MerchantInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    phone = serializers.CharField(max_length=32, required=False, allow_blank=True, default="")
    category_ids = serializers.PrimaryKeyRelatedField(
        source="categories",
        queryset=ProductCategory.objects.all(),
        many=True,
        required=False,
        default=list,
    )
    address = AddressSerializer()
    is_active = serializers.BooleanField(required=False, default=True)


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

    def get_category_ids(self, merchant) -> list[int]:
        return sorted(category.pk for category in merchant.categories.all())


class MerchantFilterSerializer(serializers.Serializer):
    category = serializers.CharField(required=False, max_length=100)
    q = serializers.CharField(required=False, max_length=200)


class DeliveryZoneInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    area = GeoJSONAreaField()
    delivery_fee = MoneyField(max_digits=8)
    min_order_amount = MoneyField(required=False, default="0.00")
    is_active = serializers.BooleanField(required=False, default=True)


class DeliveryZoneOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    merchant_id = serializers.IntegerField()
    name = serializers.CharField()
    area = GeoJSONAreaField()
    delivery_fee = MoneyField(max_digits=8)
    min_order_amount = MoneyField()
    is_active = serializers.BooleanField()
