"""The order answer built by hand says exactly what the schema's serializer says."""

from datetime import timedelta

import pytest
from django.utils import timezone

from delivery.services import courier_create
from orders.models import Order
from orders.selectors import order_detail, order_list
from orders.serializers import (
    OrderDetailSerializer,
    OrderOutputSerializer,
    order_detail_payload,
    order_payload_list,
)
from orders.services import order_transition
from tests import factories
from tests.market import ORDERS, api_client_as, order_body

pytestmark = pytest.mark.django_db


def both_ways(market, order_id):
    order = order_detail(user=market["owner"], order_id=order_id)
    return order_detail_payload(order), dict(OrderDetailSerializer(order).data)


def test_confirmed_order_with_a_history(market):
    placed = (
        market["client"]
        .post(ORDERS, order_body(market, (market["bread"], 3), (market["milk"], 4)))
        .json()
    )
    order_transition(order_id=placed["id"], actor=market["owner"], to_status="preparing")
    order_transition(
        order_id=placed["id"], actor=market["owner"], to_status="cancelled", reason="Oven broke"
    )
    by_hand, by_serializer = both_ways(market, placed["id"])
    assert by_hand == by_serializer
    assert [change["status"] for change in by_hand["history"]] == [
        "confirmed",
        "preparing",
        "cancelled",
    ]


def test_rejected_order_with_shortages(market):
    placed = market["client"].post(ORDERS, order_body(market, (market["milk"], 500))).json()
    by_hand, by_serializer = both_ways(market, placed["id"])
    assert by_hand == by_serializer
    assert by_hand["shortages"][0]["requested"] == 500


def test_delivered_order_with_a_courier_and_large_amounts(market):
    placed = market["client"].post(ORDERS, order_body(market, (market["bread"], 2))).json()
    courier = courier_create(
        user=factories.user(), name="Rider", vehicle="bike", capacity=2, status="available"
    )
    delivered_at = timezone.now() + timedelta(minutes=31, microseconds=7)
    Order.objects.filter(pk=placed["id"]).update(
        status="delivered",
        courier=courier,
        delivered_at=delivered_at,
        subtotal="123456789.05",
        total="123456790.55",
    )
    by_hand, by_serializer = both_ways(market, placed["id"])
    assert by_hand == by_serializer
    assert by_hand["courier_id"] == courier.pk
    assert by_hand["total"] == "123456790.55"
    assert by_hand["delivered_at"] is not None


def test_a_listed_page_says_what_the_list_serializer_says(market):
    """Orders listed (GET /orders/ and the courier's open orders, from plain rows) are
    built by hand too, and say the same."""
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
    Order.objects.filter(pk=placed[0]["id"]).update(courier=courier, status="ready")
    Order.objects.filter(pk=placed[2]["id"]).update(
        status="delivered",
        delivered_at=timezone.now() + timedelta(minutes=31, microseconds=7),
        subtotal="123456789.05",
        total="123456790.55",
    )
    orders = list(order_list(user=market["owner"]))
    assert len(orders) == 3
    by_serializer = [dict(row) for row in OrderOutputSerializer(orders, many=True).data]
    assert order_payload_list(orders) == by_serializer
    listed = market["client"].get(ORDERS).json()["results"]
    assert listed == by_serializer
    carried = api_client_as(courier.user).get("/api/v1/couriers/me/orders/").json()["results"]
    assert carried == [row for row in by_serializer if row["id"] == placed[0]["id"]]
