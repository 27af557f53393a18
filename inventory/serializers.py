from rest_framework import serializers

from catalog.models import Product
from catalog.selectors import products_visible_to
from geomarket.api.fields import IdField, MoneyField, StrictIntegerField
from inventory.models import MAX_QUANTITY
from inventory.shapes import INVENTORY


class InventoryCreateSerializer(serializers.Serializer):
    """`context["user"]`, the caller, names by `product_id` only a product it may see
    (`products_visible_to`): another merchant's draft is as unknown as a missing one,
    rather than a 403 telling that it exists."""

    product_id = serializers.PrimaryKeyRelatedField(
        source="product", queryset=Product.objects.select_related("merchant"), pk_field=IdField()
    )
    quantity = StrictIntegerField(min_value=0, max_value=MAX_QUANTITY)
    low_stock_threshold = StrictIntegerField(
        min_value=0, max_value=MAX_QUANTITY, required=False, default=5
    )

    def get_fields(self):
        fields = super().get_fields()
        user = self.context.get("user")
        if user is not None:
            visible = products_visible_to(user=user)
            fields["product_id"].queryset = visible.select_related("merchant")
        return fields


class InventoryUpdateSerializer(serializers.Serializer):
    quantity = StrictIntegerField(min_value=0, max_value=MAX_QUANTITY)
    low_stock_threshold = StrictIntegerField(min_value=0, max_value=MAX_QUANTITY)


class InventoryAdjustSerializer(serializers.Serializer):
    delta = StrictIntegerField(min_value=-MAX_QUANTITY, max_value=MAX_QUANTITY)
    reason = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")

    def validate_delta(self, value: int) -> int:
        if value == 0:
            raise serializers.ValidationError("A zero adjustment changes nothing.")
        return value


# Declared in `inventory.shapes`, as the rows the lists render without it are.
InventoryOutputSerializer = INVENTORY.serializer()


class InventoryFilterSerializer(serializers.Serializer):
    merchant_id = IdField(required=False)
    product_id = IdField(required=False)
    low_stock = serializers.BooleanField(required=False, allow_null=True, default=None)


class MerchantStockSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    product_id = serializers.IntegerField()
    product_title = serializers.CharField()
    price = MoneyField()
    category_name = serializers.CharField()
    quantity = serializers.IntegerField()
    low_stock_threshold = serializers.IntegerField()
    updated_at = serializers.DateTimeField()
