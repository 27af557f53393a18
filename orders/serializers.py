from rest_framework import serializers

from geomarket.api.fields import (
    IdField,
    MoneyField,
    OffsetDateTimeField,
    StrictIntegerField,
    TimestampField,
    range_in_order,
)
from geomarket.shapes import money
from merchants.serializers import AddressSerializer
from orders.handover import MAX_FAILURES, handover_code_shown
from orders.models import (
    REVENUE_STATUSES,
    FailureReason,
    IncidentKind,
    OrderStatus,
    OrderStatusTally,
)
from orders.selectors import DELIVERED_FAR_M
from orders.shapes import ADDRESS_TEXT_FIELDS, INCIDENT, MERCHANT_ORDER, ORDER, ORDER_DETAIL


class OrderLineSerializer(serializers.Serializer):
    product_id = IdField()
    quantity = StrictIntegerField(min_value=1, max_value=999)


class DeliveryAddressSerializer(AddressSerializer):
    pass


class OrderCreateSerializer(serializers.Serializer):
    merchant_id = IdField()
    items = OrderLineSerializer(many=True, allow_empty=False, max_length=100)
    delivery_address = DeliveryAddressSerializer()
    slot_starts_at = OffsetDateTimeField(
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
    reason = serializers.CharField(
        max_length=200,
        required=False,
        allow_blank=True,
        default="",
        help_text="Why; for `failed` required, one of: "
        + ", ".join(f"`{value}`" for value in FailureReason.values)
        + ".",
    )
    handover_code = serializers.CharField(
        max_length=32,
        required=False,
        allow_blank=True,
        default="",
        help_text="For `delivered`, when the order was given a handover code at pickup (its"
        " merchant requires one): the 4 digits the customer tells the courier. Missing or"
        f" wrong: 409 `handover_code_mismatch` (a wrong one counts a try); after"
        f" {MAX_FAILURES} wrong codes 409 `handover_locked`, whatever the code, and only an"
        " operator (who needs no code) may deliver it.",
    )


# The schema's serializers of the order answers, from their shapes (`orders.shapes`).
OrderOutputSerializer = ORDER.serializer()
OrderDetailSerializer = ORDER_DETAIL.serializer()
MerchantOrderSerializer = MERCHANT_ORDER.serializer()


def _lines(order):
    # A list where `order_detail` reads them (`LINES`); an order just placed carries its
    # prefetched items instead.
    lines = getattr(order, "lines", None)
    return order.items.all() if lines is None else lines


def _order_row(order) -> tuple:
    """The values of `ORDER`'s fields, in order, from an order model (with its merchant,
    address and lines)."""
    address = order.delivery_address
    return (
        order.pk,
        order.status,
        (order.merchant.pk, order.merchant.name),
        [
            (item.product_id, item.title, item.unit_price, item.quantity, item.line_total)
            for item in _lines(order)
        ],
        order.subtotal,
        order.delivery_fee,
        order.total,
        order.rejection_reason,
        [
            (shortage["product_id"], shortage["requested"], shortage["available"])
            for shortage in order.shortages
        ],
        (*(getattr(address, name) for name in ADDRESS_TEXT_FIELDS), address.location),
        order.courier_id,
        order.created_at,
        order.updated_at,
        order.delivered_at,
        order.slot_starts_at,
        order.slot_ends_at,
        order.failure_reason,
        order.delivered_location,
        order.delivered_distance_m,
    )


def order_payload(order) -> dict:
    """The order's answer (`ORDER`) built in Python, for an order just placed or changed:
    lists and details are rendered by PostgreSQL from the same shape."""
    return ORDER.render(_order_row(order))


def order_detail_payload(order, *, viewer_id: int | None = None) -> dict:
    """The order's answer with its history (`ORDER_DETAIL`), built in Python, as the user
    `viewer_id` sees it (the handover code is its customer's alone)."""
    history = [
        (change.from_status, change.to_status, change.actor_id, change.reason, change.created_at)
        for change in order.history.all()
    ]
    code = handover_code_shown(
        viewer_id=viewer_id,
        buyer_id=order.buyer_id,
        status=order.status,
        order_id=order.pk,
        code_hash=order.handover_code_hash,
    )
    return ORDER_DETAIL.render((*_order_row(order), history, code))


class OrderFilterSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=OrderStatus.choices, required=False)
    merchant_id = IdField(required=False)
    created_after = TimestampField(
        in_query=True,
        required=False,
        help_text="Orders created at or after this instant (ISO 8601; without an offset, UTC).",
    )
    created_before = TimestampField(
        in_query=True,
        required=False,
        help_text="Orders created at or before this instant (ISO 8601; without an offset,"
        " UTC). One earlier than `created_after` is a 400.",
    )
    delivered_far = serializers.BooleanField(
        required=False,
        default=False,
        help_text="true: only orders delivered more than"
        f" {DELIVERED_FAR_M} m (geodesic) from their delivery point, by where the courier"
        " was when it said delivered (`delivered_distance_m`); for operators' review of"
        " doubtful deliveries, over the orders the caller sees.",
    )

    def validate(self, attrs):
        range_in_order(
            start_name="created_after",
            end_name="created_before",
            start=attrs.get("created_after"),
            end=attrs.get("created_before"),
        )
        return attrs


class OrderStatsParamsSerializer(serializers.Serializer):
    merchant_id = IdField(required=False)


class OrderStatsSerializer(serializers.Serializer):
    by_status = serializers.DictField(child=serializers.IntegerField())
    orders = serializers.IntegerField()
    # As wide as the tally it sums (an order alone may reach 9,999,999,999.99).
    revenue = MoneyField(
        max_digits=OrderStatusTally._meta.get_field("total").max_digits,
        help_text="The totals of the orders "
        + ", ".join(f"`{status}`" for status in REVENUE_STATUSES)
        + "; not of the others ("
        + ", ".join(f"`{status}`" for status in OrderStatus if status not in REVENUE_STATUSES)
        + ").",
    )


def order_stats_payload(stats: dict) -> dict:
    """`OrderStatsSerializer(stats).data`, built directly: the serializer, built per
    request, cost more CPU than the statement. It remains the schema; a test holds the
    two equal."""
    return {**stats, "revenue": money(stats["revenue"])}


class IncidentInputSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=IncidentKind.choices)
    note = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


IncidentSerializer = INCIDENT.serializer()


def incident_payload(incident) -> dict:
    """The `INCIDENT` object of an incident just recorded."""
    return INCIDENT.render([getattr(incident, column) for column in INCIDENT.columns])
