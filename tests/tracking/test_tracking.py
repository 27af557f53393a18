"""GET orders/{id}/tracking/: who sees the courier, for every role and every status, and
the estimate of arrival."""

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from django.conf import settings
from django.contrib.gis.geos import Point
from rest_framework.renderers import JSONRenderer

from delivery.models import Courier
from delivery.services import courier_create
from orders.models import Order, OrderStatus
from tests import factories
from tests.geo_fixtures import geodesic_m
from tests.market import api_client_as, build_market
from tests.tracking.tracked import order_with_courier
from tracking.selectors import courier_location_visible
from tracking.serializers import OrderTrackingSerializer

pytestmark = pytest.mark.django_db

ROLES = ("customer", "owner", "courier", "operator")
# The contract's rule, written out as a table: the statuses in which each role sees the
# courier.
SEES = {
    "customer": {"picked_up"},
    "owner": {"ready", "picked_up"},
    "courier": set(OrderStatus.values),
    "operator": set(OrderStatus.values),
}


@pytest.mark.parametrize("status", OrderStatus.values)
def test_the_rule_for_every_role_and_status(status):
    for role in ROLES:
        assert courier_location_visible(roles={role}, status=status) == (status in SEES[role])
    assert not courier_location_visible(roles=set(), status=status)
    # Holding several roles, a caller sees what any of them sees.
    assert courier_location_visible(roles={"customer", "owner"}, status=status) == (
        status in SEES["customer"] | SEES["owner"]
    )


@pytest.fixture
def tracked(as_user):
    market = build_market(as_user)
    order, courier, courier_user = order_with_courier(market)
    shop = market["shop"]
    # 600 m south of the shop.
    Courier.objects.filter(pk=courier.pk).update(
        location=Point(shop.location.x, shop.location.y - 0.0054, srid=4326)
    )
    clients = {
        "customer": market["client"],
        "owner": market["owner_client"],
        "courier": api_client_as(courier_user),
        "operator": api_client_as(factories.user(is_staff=True)),
    }
    return {"order": order, "courier": courier, "clients": clients, "market": market}


def tracking_of(client, order):
    return client.get(f"/api/v1/orders/{order.pk}/tracking/")


@pytest.mark.parametrize("status", OrderStatus.values)
def test_each_role_sees_the_courier_only_as_the_rule_says(tracked, status):
    order = tracked["order"]
    Order.objects.filter(pk=order.pk).update(status=status)
    for role, client in tracked["clients"].items():
        answer = tracking_of(client, order)
        assert answer.status_code == 200, (role, answer.content)
        body = answer.json()
        assert body["status"] == status
        if status in SEES[role]:
            courier = body["courier"]
            assert courier["id"] == tracked["courier"].pk
            assert courier["name"] == "Kim"
            assert courier["vehicle"] == "scooter"
            assert courier["location"]["type"] == "Point"
        else:
            assert body["courier"] is None, (role, status)


@pytest.mark.parametrize("status", ["ready", "picked_up", "delivered"])
def test_the_answer_is_what_the_schemas_serializer_renders(tracked, status):
    """The answer, built without the serializer, is byte for byte what it renders of the
    order's models."""
    order = tracked["order"]
    Order.objects.filter(pk=order.pk).update(status=status)
    Courier.objects.filter(pk=tracked["courier"].pk).update(
        location_updated_at=datetime(2026, 1, 2, 3, 4, 5, 7, tzinfo=UTC)
    )
    order.refresh_from_db()
    courier = Courier.objects.get(pk=tracked["courier"].pk)
    for role, client in tracked["clients"].items():
        answer = tracking_of(client, order)
        shown = SimpleNamespace(
            status=status,
            courier=courier if status in SEES[role] else None,
            eta_s=answer.json()["eta_s"],
            updated_at=order.updated_at,
        )
        expected = JSONRenderer().render(OrderTrackingSerializer(shown).data)
        assert answer.content == expected, role


def test_strangers_and_anonymous_callers_see_nothing(tracked):
    order = tracked["order"]
    assert tracking_of(api_client_as(factories.user()), order).status_code == 404
    other_courier = factories.user()
    courier_create(user=other_courier, name="Other", vehicle="bike", capacity=1, status="available")
    assert tracking_of(api_client_as(other_courier), order).status_code == 404
    assert tracking_of(api_client_as(None), order).status_code == 401


def test_an_order_without_a_courier_shows_none(tracked):
    order = tracked["order"]
    Order.objects.filter(pk=order.pk).update(courier=None, status="ready")
    assert tracking_of(tracked["clients"]["operator"], order).json()["courier"] is None


def test_the_estimate_follows_the_courier_then_ends(tracked):
    order = tracked["order"]
    shop = tracked["market"]["shop"]
    point = order.delivery_address.location
    courier_location = Courier.objects.get(pk=tracked["courier"].pk).location
    speed = settings.ETA_SPEEDS_M_PER_S["scooter"]
    client = tracked["clients"]["operator"]
    # Before pickup: to the shop, then to the customer.
    Order.objects.filter(pk=order.pk).update(status="ready")
    to_shop = geodesic_m(courier_location.y, courier_location.x, shop.location.y, shop.location.x)
    to_point = geodesic_m(shop.location.y, shop.location.x, point.y, point.x)
    assert tracking_of(client, order).json()["eta_s"] == pytest.approx(
        (to_shop + to_point) / speed, abs=1
    )
    # Picked up: straight to the customer.
    Order.objects.filter(pk=order.pk).update(status="picked_up")
    direct = geodesic_m(courier_location.y, courier_location.x, point.y, point.x)
    assert tracking_of(client, order).json()["eta_s"] == pytest.approx(direct / speed, abs=1)
    # Delivered: nothing to estimate.
    Order.objects.filter(pk=order.pk).update(status="delivered")
    assert tracking_of(client, order).json()["eta_s"] is None


def test_without_a_courier_the_estimate_counts_preparation(tracked):
    order = tracked["order"]
    shop = tracked["market"]["shop"]
    point = order.delivery_address.location
    Order.objects.filter(pk=order.pk).update(courier=None, status="confirmed")
    to_point = geodesic_m(shop.location.y, shop.location.x, point.y, point.x)
    expected = (
        settings.ETA_PREPARATION_SECONDS
        + to_point / settings.ETA_SPEEDS_M_PER_S[settings.ETA_DEFAULT_VEHICLE]
    )
    answer = tracking_of(tracked["clients"]["customer"], order).json()
    assert answer["eta_s"] == pytest.approx(expected, abs=1)
