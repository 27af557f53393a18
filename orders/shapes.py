"""The shapes of an order as the API answers it, declared once (`geomarket.shapes`): the
schema's serializers, the answer built in Python from a placed order, and the lists and
details PostgreSQL renders (`orders.selectors`) all come from these. Each source is a
column of the rows `orders.selectors` reads (`ORDER_ROW_VALUES`)."""

from dataclasses import replace

from geomarket.api.fields import MoneyField
from geomarket.shapes import (
    DATETIME,
    INTEGER,
    METRES,
    MONEY,
    POINT,
    TEXT,
    Field,
    Kind,
    Shape,
    choice,
)
from orders.models import IncidentKind, OrderStatus


def _money(max_digits: int) -> Kind:
    # The schema bounds each amount by its column's digits.
    return replace(MONEY, field=lambda **options: MoneyField(max_digits=max_digits, **options))


ORDER_MERCHANT = Shape(
    "OrderMerchant",
    (Field("id", INTEGER, source="merchant_id"), Field("name", TEXT, source="merchant_name")),
)

ORDER_ITEM = Shape(
    "OrderItem",
    (
        Field("product_id", INTEGER),
        Field("title", TEXT),
        Field("unit_price", _money(10)),
        Field("quantity", INTEGER),
        Field("line_total", _money(12)),
    ),
)

# What a refused order lacked: each line's product, what was asked and what was left.
SHORTAGE = Shape(
    "Shortage",
    (Field("product_id", INTEGER), Field("requested", INTEGER), Field("available", INTEGER)),
)

# The delivery address's text fields, in the answer's order (`ORDER_ADDRESS`).
ADDRESS_TEXT_FIELDS = ("line1", "line2", "city", "postal_code", "country")

ORDER_ADDRESS = Shape(
    "OrderAddress",
    (
        *(Field(name, TEXT, source=f"address_{name}") for name in ADDRESS_TEXT_FIELDS),
        Field("location", POINT, source="address_location"),
    ),
)

ORDER = Shape(
    "OrderOutput",
    (
        Field("id", INTEGER),
        Field("status", choice(OrderStatus)),
        Field("merchant", shape=ORDER_MERCHANT),
        Field("items", shape=ORDER_ITEM, many=True, source="items_json"),
        Field("subtotal", _money(12)),
        Field("delivery_fee", _money(8)),
        Field("total", _money(12)),
        Field("rejection_reason", TEXT),
        Field("shortages", shape=SHORTAGE, many=True, source="shortages_json"),
        Field("delivery_address", shape=ORDER_ADDRESS),
        Field("courier_id", INTEGER, null=True),
        Field("created_at", DATETIME),
        Field("updated_at", DATETIME),
        Field("delivered_at", DATETIME, null=True),
        Field(
            "slot_starts_at",
            DATETIME,
            null=True,
            help_text="The delivery slot's start; null for delivery now.",
        ),
        Field(
            "slot_ends_at",
            DATETIME,
            null=True,
            help_text="The delivery slot's end; null for delivery now.",
        ),
        Field(
            "failure_reason",
            TEXT,
            help_text="Why the delivery failed (customer_absent, address_not_found, refused,"
            " damaged, other); empty unless it failed.",
        ),
        Field(
            "delivered_location",
            POINT,
            null=True,
            help_text="The courier's point when it said delivered; null before, or when"
            " the courier had no known point.",
        ),
        Field(
            "delivered_distance_m",
            METRES,
            null=True,
            help_text="Geodesic metres from `delivered_location` to the delivery point;"
            " null when `delivered_location` is.",
        ),
    ),
)

ORDER_HISTORY = Shape(
    "OrderHistory",
    (
        Field("from_status", TEXT),
        Field("status", TEXT, source="to_status"),
        Field("actor_id", INTEGER, null=True),
        Field("reason", TEXT),
        Field("at", DATETIME, source="created_at"),
    ),
)

# The handover code comes last: PostgreSQL renders it null, and the answer to the
# order's customer is given the code in its place (`orders.selectors.order_detail_json`).
HANDOVER_CODE = Field(
    "handover_code",
    TEXT,
    null=True,
    source="handover_code",
    help_text="The 4-digit code the customer tells the courier at the door, when the"
    " merchant requires one: shown to the order's customer alone, while the order is"
    " picked_up; null otherwise and to everyone else.",
)

ORDER_DETAIL = Shape(
    "OrderDetail",
    (
        *ORDER.fields,
        Field("history", shape=ORDER_HISTORY, many=True, source="history_json"),
        HANDOVER_CODE,
    ),
)

# An order in its merchant's list.
MERCHANT_ORDER = Shape(
    "MerchantOrder",
    (
        Field("id", INTEGER),
        Field("status", TEXT),
        Field("created_at", DATETIME),
        Field("total_items", INTEGER),
        Field("total", _money(12)),
    ),
)

# An incident of an order (`orders.services.incidents`).
INCIDENT = Shape(
    "OrderIncident",
    (
        Field("id", INTEGER),
        Field("kind", choice(IncidentKind)),
        Field("note", TEXT),
        Field(
            "author_role",
            TEXT,
            help_text="The author's role towards the order: customer, owner, courier or"
            " operator; of several, the first of operator, owner, courier, customer.",
        ),
        Field("created_at", DATETIME),
    ),
)


# A live order on the console's map: where it goes.
MAP_ORDER = Shape(
    "MapOrder",
    (
        Field("id", INTEGER),
        Field("status", TEXT),
        Field("merchant_id", INTEGER),
        Field("courier_id", INTEGER, null=True),
        Field("location", POINT),
    ),
)
