"""The order answers PostgreSQL renders (the lists, the courier's orders, the detail) are,
byte for byte, the answers Python renders for an order just placed or changed: both come
from the order's shapes (`orders.shapes`)."""

from datetime import UTC, datetime

import pytest
from rest_framework.renderers import JSONRenderer

from catalog.models import Product
from delivery.services import courier_create
from merchants.models import Address
from orders.models import Order
from orders.selectors import order_detail
from orders.serializers import (
    OrderDetailSerializer,
    OrderOutputSerializer,
    order_detail_payload,
    order_payload,
)
from orders.services import order_transition
from orders.shapes import ORDER, ORDER_DETAIL
from tests import factories
from tests.market import ORDERS, api_client_as, order_body

pytestmark = pytest.mark.django_db

# Text JSON escapes (quotes, backslashes, control characters), JavaScript's line
# separators (which DRF escapes) and characters sent raw.
NASTY_TEXT = 'Caf\u00e9 "Q" \\ \u2028\u2029 \x01\x1f\t </script> \U0001f600'


def by_python(market, order_id: int) -> bytes:
    order = order_detail(user=market["owner"], order_id=order_id)
    return JSONRenderer().render(order_detail_payload(order))


def detail(client, order_id: int) -> bytes:
    response = client.get(f"{ORDERS}{order_id}/")
    assert response.status_code == 200
    return response.content


def listed(client, path: str, **params) -> bytes:
    """The JSON text of a page's results, as the answer holds it."""
    response = client.get(path, params)
    assert response.status_code == 200
    envelope, results = response.content.split(b',"results":')
    assert envelope.startswith(b'{"count":')
    return results.removesuffix(b"}")


def test_a_placed_and_changed_order_reads_back_as_it_was_answered(market):
    Product.objects.filter(pk=market["bread"].pk).update(title=NASTY_TEXT)
    placed = market["client"].post(
        ORDERS, order_body(market, (market["bread"], 3), (market["milk"], 4))
    )
    order_id = placed.json()["id"]
    Address.objects.filter(pk=Order.objects.get(pk=order_id).delivery_address_id).update(
        line2=NASTY_TEXT
    )
    order_transition(order_id=order_id, actor=market["owner"], to_status="preparing")
    order_transition(
        order_id=order_id, actor=market["owner"], to_status="cancelled", reason=NASTY_TEXT
    )
    answer = detail(market["client"], order_id)
    assert answer == by_python(market, order_id)
    body = market["client"].get(f"{ORDERS}{order_id}/").json()
    assert [line["title"] for line in body["items"]] == [NASTY_TEXT, "Milk"]
    assert body["delivery_address"]["line2"] == NASTY_TEXT
    assert [(change["status"], change["reason"]) for change in body["history"]] == [
        ("confirmed", ""),
        ("preparing", ""),
        ("cancelled", NASTY_TEXT),
    ]


def test_the_answer_to_placing_is_what_the_order_reads(market):
    placed = market["client"].post(
        ORDERS, order_body(market, (market["milk"], 2), (market["bread"], 1))
    )
    assert placed.status_code == 201
    assert detail(market["client"], placed.json()["id"]) == placed.content


def test_rejected_order_with_shortages(market):
    placed = market["client"].post(
        ORDERS, order_body(market, (market["milk"], 500), (market["bread"], 300))
    )
    order_id = placed.json()["id"]
    assert detail(market["client"], order_id) == by_python(market, order_id)
    shortages = market["client"].get(f"{ORDERS}{order_id}/").json()["shortages"]
    assert [shortage["requested"] for shortage in shortages] == [500, 300]


def test_delivered_order_with_a_courier_and_large_amounts(market):
    placed = market["client"].post(ORDERS, order_body(market, (market["bread"], 2))).json()
    courier = courier_create(
        user=factories.user(), name="Rider", vehicle="bike", capacity=2, status="available"
    )
    Order.objects.filter(pk=placed["id"]).update(
        status="delivered",
        courier=courier,
        delivered_at=datetime(2026, 1, 2, 3, 4, 5, 7, tzinfo=UTC),
        subtotal="123456789.05",
        total="123456790.55",
    )
    assert detail(market["client"], placed["id"]) == by_python(market, placed["id"])
    body = market["client"].get(f"{ORDERS}{placed['id']}/").json()
    assert (body["courier_id"], body["total"], body["delivered_at"]) == (
        courier.pk,
        "123456790.55",
        "2026-01-02T03:04:05.000007Z",
    )


def test_listed_pages_say_what_python_says(market):
    """Orders listed (GET /orders/, and the courier's open orders) read as Python renders
    each order, in the lists' orders."""
    placed = [
        market["client"].post(ORDERS, order_body(market, (market["bread"], 2))).json(),
        market["client"].post(ORDERS, order_body(market, (market["milk"], 500))).json(),
        market["client"]
        .post(ORDERS, order_body(market, (market["bread"], 1), (market["milk"], 2)))
        .json(),
    ]
    courier = courier_create(
        user=factories.user(), name="Rider", vehicle="bike", capacity=2, status="available"
    )
    Order.objects.filter(pk__in=[placed[0]["id"], placed[2]["id"]]).update(
        courier=courier, status="ready"
    )

    def by_python(*indexes) -> bytes:
        orders = [
            order_detail(user=market["owner"], order_id=placed[index]["id"]) for index in indexes
        ]
        return JSONRenderer().render([order_payload(order) for order in orders])

    assert listed(market["owner_client"], ORDERS) == by_python(2, 1, 0)
    assert listed(market["client"], ORDERS, page_size=1, page=2) == by_python(1)
    courier_client = api_client_as(courier.user)
    assert listed(courier_client, "/api/v1/couriers/me/orders/") == by_python(0, 2)


def test_the_schemas_serializers_are_the_shapes():
    assert list(OrderOutputSerializer().fields) == ORDER.names
    assert list(OrderDetailSerializer().fields) == ORDER_DETAIL.names
