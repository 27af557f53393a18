"""Where an order was delivered: the courier's current point when it says `delivered`,
and its geodesic distance from the delivery point; and operators' list of the orders
delivered more than 200 m from their address (`delivered_far=true`)."""

import pytest
from django.contrib.gis.geos import Point

from delivery.models import Courier
from orders.models import Order
from tests import factories
from tests.geo_fixtures import GEOD
from tests.market import ORDERS
from tests.tracking.tracked import order_with_courier

pytestmark = pytest.mark.django_db


def deliver_from(market, as_user, *, metres: float | None) -> tuple[Order, Point | None]:
    """An order of the market delivered by a courier `metres` due east of its delivery
    point (None: a courier that never sent a point); the order and the courier's point."""
    order, courier, courier_user = order_with_courier(market)
    Order.objects.filter(pk=order.pk).update(status="picked_up")
    address = Order.objects.select_related("delivery_address").get(pk=order.pk)
    target = address.delivery_address.location
    point = None
    if metres is not None:
        lng, lat, _ = GEOD.fwd(target.x, target.y, 90, metres)
        point = Point(lng, lat, srid=4326)
    Courier.objects.filter(pk=courier.pk).update(location=point)
    answer = as_user(courier_user).post(
        f"{ORDERS}{order.pk}/status/", {"status": "delivered"}, format="json"
    )
    assert answer.status_code == 200, answer.json()
    return order, point


@pytest.mark.parametrize("metres", [0.0, 37.25, 350.0, 2500.0])
def test_delivered_records_the_couriers_point_and_its_geodesic_distance(market, as_user, metres):
    order, point = deliver_from(market, as_user, metres=metres)
    detail = market["client"].get(f"{ORDERS}{order.pk}/").json()
    assert detail["delivered_location"] == {"type": "Point", "coordinates": [point.x, point.y]}
    # Within 0.5 m of GeographicLib's (PROJ's geodesic), as every distance of the API.
    assert detail["delivered_distance_m"] == pytest.approx(metres, abs=0.5)
    stored = Order.objects.get(pk=order.pk)
    assert (stored.delivered_location.x, stored.delivered_location.y) == (point.x, point.y)


def test_the_answer_to_delivered_shows_where(market, as_user):
    order, courier, courier_user = order_with_courier(market)
    Order.objects.filter(pk=order.pk).update(status="picked_up")
    Courier.objects.filter(pk=courier.pk).update(location=Point(13.41, 52.52, srid=4326))
    answer = (
        as_user(courier_user)
        .post(f"{ORDERS}{order.pk}/status/", {"status": "delivered"}, format="json")
        .json()
    )
    assert answer["delivered_location"] == {"type": "Point", "coordinates": [13.41, 52.52]}
    assert answer["delivered_distance_m"] > 0


def test_a_courier_without_a_point_leaves_both_null(market, as_user):
    order, _ = deliver_from(market, as_user, metres=None)
    detail = market["client"].get(f"{ORDERS}{order.pk}/").json()
    assert (detail["status"], detail["delivered_location"], detail["delivered_distance_m"]) == (
        "delivered",
        None,
        None,
    )


def test_an_order_not_yet_delivered_shows_null(market, as_user):
    order, courier, _ = order_with_courier(market)
    Courier.objects.filter(pk=courier.pk).update(location=Point(13.41, 52.52, srid=4326))
    detail = market["client"].get(f"{ORDERS}{order.pk}/").json()
    assert (detail["delivered_location"], detail["delivered_distance_m"]) == (None, None)


def test_operators_list_the_orders_delivered_far_from_their_address(market, as_user):
    near, _ = deliver_from(market, as_user, metres=150)
    edge, _ = deliver_from(market, as_user, metres=199.9)
    far, _ = deliver_from(market, as_user, metres=260)
    farther, _ = deliver_from(market, as_user, metres=1200)
    unknown, _ = deliver_from(market, as_user, metres=None)
    operator = as_user(factories.user(is_staff=True))
    listed = operator.get(ORDERS, {"delivered_far": "true"}).json()
    assert [row["id"] for row in listed["results"]] == [farther.pk, far.pk]
    assert listed["count"] == 2
    everything = operator.get(ORDERS, {"delivered_far": "false"}).json()
    assert {row["id"] for row in everything["results"]} == {
        near.pk,
        edge.pk,
        far.pk,
        farther.pk,
        unknown.pk,
    }
    # Combined with the other filters, and over the orders the caller sees.
    assert (
        operator.get(ORDERS, {"delivered_far": "true", "status": "delivered"}).json()["count"] == 2
    )
    assert market["client"].get(ORDERS, {"delivered_far": "true"}).json()["count"] == 2
    assert as_user(factories.user()).get(ORDERS, {"delivered_far": "true"}).json()["count"] == 0


def test_delivered_far_must_be_a_boolean(market):
    answer = market["client"].get(ORDERS, {"delivered_far": "far"})
    assert answer.status_code == 400
    assert "delivered_far" in answer.json()


def test_the_delivered_answer_and_the_detail_agree(market, as_user):
    """The answer to `delivered` (rendered in Python) and the detail (by PostgreSQL) carry
    the same place and distance."""
    order, courier, courier_user = order_with_courier(market)
    Order.objects.filter(pk=order.pk).update(status="picked_up")
    target = Order.objects.select_related("delivery_address").get(pk=order.pk)
    location = target.delivery_address.location
    lng, lat, _ = GEOD.fwd(location.x, location.y, 30, 123.456)
    Courier.objects.filter(pk=courier.pk).update(location=Point(lng, lat, srid=4326))
    answer = as_user(courier_user).post(
        f"{ORDERS}{order.pk}/status/", {"status": "delivered"}, format="json"
    )
    detail = as_user(courier_user).get(f"{ORDERS}{order.pk}/")
    assert answer.json() == detail.json()
    assert detail.json()["delivered_distance_m"] == pytest.approx(123.46, abs=0.005)
