from rest_framework import serializers

from geomarket.api.fields import GeoJSONPointField, IdField, MoneyField, StrictIntegerField
from geomarket.geo import geometry_to_geojson
from merchants.serializers import AddressSerializer
from orders.models import OrderStatus


class OrderLineSerializer(serializers.Serializer):
    product_id = IdField()
    quantity = StrictIntegerField(min_value=1, max_value=999)


class DeliveryAddressSerializer(AddressSerializer):
    pass


class OrderCreateSerializer(serializers.Serializer):
    merchant_id = IdField()
    items = OrderLineSerializer(many=True, allow_empty=False, max_length=100)
    delivery_address = DeliveryAddressSerializer()
    slot_starts_at = serializers.DateTimeField(
        required=False,
        allow_null=True,
        default=None,
        help_text=(
            "Deliver in the merchant's slot starting at this instant (ISO 8601 with an"
            " offset): one of its current slots (`merchants/{id}/slots/`), booked with the"
            " order; a full slot is refused with 409 `slot_full`. Absent: deliver now, and"
            " the merchant must be open now."
        ),
    )

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
    slot_starts_at = serializers.DateTimeField(
        allow_null=True, help_text="The delivery slot's start; null for delivery now."
    )
    slot_ends_at = serializers.DateTimeField(
        allow_null=True, help_text="The delivery slot's end; null for delivery now."
    )


class OrderDetailSerializer(OrderOutputSerializer):
    history = OrderHistorySerializer(many=True)


# Formatters shared by every call of `order_payload`: they hold no per-call state.
_money = MoneyField(max_digits=14).to_representation
_moment = serializers.DateTimeField().to_representation


def _maybe_moment(value):
    return None if value is None else _moment(value)


def _lines(order):
    # A list where the orders' selectors read them (`LINES` for detail, `order_rows` for
    # pages); an order just placed carries its prefetched items instead.
    lines = getattr(order, "lines", None)
    return order.items.all() if lines is None else lines


def order_payload(order) -> dict:
    """`OrderOutputSerializer(order).data`, built directly.

    An order's answer is the hottest write's response, and lists carry twenty of them; a
    DRF serializer spends about a millisecond deep-copying its nested fields for each.
    The serializer remains the schema, and tests hold the two equal.
    """
    address = order.delivery_address
    return {
        "id": order.pk,
        "status": order.status,
        "merchant": {"id": order.merchant.pk, "name": order.merchant.name},
        "items": [
            {
                "product_id": item.product_id,
                "title": item.title,
                "unit_price": _money(item.unit_price),
                "quantity": item.quantity,
                "line_total": _money(item.line_total),
            }
            for item in _lines(order)
        ],
        "subtotal": _money(order.subtotal),
        "delivery_fee": _money(order.delivery_fee),
        "total": _money(order.total),
        "rejection_reason": order.rejection_reason,
        "shortages": [
            {
                "product_id": shortage["product_id"],
                "requested": shortage["requested"],
                "available": shortage["available"],
            }
            for shortage in order.shortages
        ],
        "delivery_address": {
            "line1": address.line1,
            "line2": address.line2,
            "city": address.city,
            "postal_code": address.postal_code,
            "country": address.country,
            "location": geometry_to_geojson(address.location),
        },
        "courier_id": order.courier_id,
        "created_at": _moment(order.created_at),
        "updated_at": _moment(order.updated_at),
        "delivered_at": _maybe_moment(order.delivered_at),
        "slot_starts_at": _maybe_moment(order.slot_starts_at),
        "slot_ends_at": _maybe_moment(order.slot_ends_at),
    }


def order_payload_list(orders) -> list[dict]:
    return [order_payload(order) for order in orders]


def order_detail_payload(order) -> dict:
    """`OrderDetailSerializer(order).data`, built directly (see `order_payload`)."""
    return {
        **order_payload(order),
        "history": [
            {
                "from_status": change.from_status,
                "status": change.to_status,
                "actor_id": change.actor_id,
                "reason": change.reason,
                "at": _moment(change.created_at),
            }
            for change in order.history.all()
        ],
    }


class OrderFilterSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=OrderStatus.choices, required=False)
    merchant_id = IdField(required=False)
    created_after = serializers.DateTimeField(required=False)
    created_before = serializers.DateTimeField(required=False)


class MerchantOrderSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    created_at = serializers.DateTimeField()
    total_items = serializers.IntegerField()
    total = MoneyField(max_digits=12)


class OrderStatsParamsSerializer(serializers.Serializer):
    merchant_id = IdField(required=False)


class OrderStatsSerializer(serializers.Serializer):
    by_status = serializers.DictField(child=serializers.IntegerField())
    orders = serializers.IntegerField()
    revenue = MoneyField(max_digits=14)
