"""Geofences: an assigned courier's ping near the merchant before pickup records
`courier.arrived_at_merchant`, near the delivery point after pickup `courier.arriving`,
once per order each, in the ping's own statement."""

from datetime import timedelta

import psycopg
import pytest

from events.models import Event
from events.services import EVENTS_CHANNEL
from geomarket.db.direct import direct_connection_params
from orders.models import Order
from tests.delivery.placing import order_placed
from tests.geo_fixtures import GEOD

pytestmark = pytest.mark.django_db

PING = "/api/v1/couriers/me/location/"
GEOFENCES = ("courier.arrived_at_merchant", "courier.arriving")


def near(point, metres: float, bearing: float = 30.0) -> dict:
    """A ping body `metres` (geodesic) from `point` (a GEOS point)."""
    lng, lat, _ = GEOD.fwd(point.x, point.y, bearing, metres)
    return {"lat": lat, "lng": lng}


def fence_events() -> list[tuple]:
    return list(
        Event.objects.filter(type__in=GEOFENCES)
        .order_by("id")
        .values_list("type", "merchant_id", "order_id", "data")
    )


@pytest.fixture
def assigned(make_courier, as_user):
    """A confirmed order, its courier 3 km away, and the courier's client."""
    placed = order_placed()
    order = Order.objects.select_related("merchant", "delivery_address").get(pk=placed.pk)
    courier = make_courier(lat=order.merchant.location.y + 0.03, lng=order.merchant.location.x)
    Order.objects.filter(pk=order.pk).update(courier=courier)
    return order, courier, as_user(courier.user)


def test_arriving_at_the_merchant_is_recorded_once_in_the_ping_statement(
    assigned, django_assert_num_queries
):
    order, courier, client = assigned
    merchant_point = order.merchant.location
    assert client.post(PING, near(merchant_point, 77)).status_code == 200
    # The delivery point's wider fence counts only after pickup.
    assert client.post(PING, near(order.delivery_address.location, 10)).status_code == 200
    assert fence_events() == []
    with django_assert_num_queries(2):  # the token, then the one ping statement
        assert client.post(PING, near(merchant_point, 73)).status_code == 200
    expected = [
        ("courier.arrived_at_merchant", order.merchant_id, order.pk, {"courier_id": courier.pk})
    ]
    assert fence_events() == expected
    for metres in (10, 200, 5):
        client.post(PING, near(merchant_point, metres))
    assert fence_events() == expected


def test_arriving_at_the_delivery_point_is_recorded_once_after_pickup(assigned):
    order, courier, client = assigned
    Order.objects.filter(pk=order.pk).update(status="picked_up")
    dropoff = order.delivery_address.location
    client.post(PING, near(order.merchant.location, 5))  # before pickup's fence, no more
    client.post(PING, near(dropoff, 510, bearing=90))
    assert fence_events() == []
    client.post(PING, near(dropoff, 490, bearing=90))
    client.post(PING, near(dropoff, 100))
    assert fence_events() == [
        ("courier.arriving", order.merchant_id, order.pk, {"courier_id": courier.pk})
    ]


def test_a_late_ping_an_unassigned_courier_or_a_delivered_order_records_nothing(
    assigned, make_courier, as_user
):
    order, courier, client = assigned
    at_merchant = near(order.merchant.location, 5)
    late = (courier.location_updated_at - timedelta(seconds=5)).isoformat()
    assert client.post(PING, {**at_merchant, "recorded_at": late}).status_code == 200
    stranger = make_courier(lat=52.0, lng=13.0)
    assert as_user(stranger.user).post(PING, at_merchant).status_code == 200
    Order.objects.filter(pk=order.pk).update(status="delivered")
    assert client.post(PING, at_merchant).status_code == 200
    assert fence_events() == []


@pytest.mark.django_db(transaction=True)
def test_only_a_ping_that_records_an_event_wakes_the_relay(assigned):
    """Notifying transactions commit one at a time (a database-wide lock): pings, which
    run an empty geofence INSERT nearly always, must not notify for nothing."""
    order, _courier, client = assigned
    with psycopg.connect(**direct_connection_params(), autocommit=True) as listener:
        listener.execute(f"LISTEN {EVENTS_CHANNEL}")

        def notified() -> int:
            return len(list(listener.notifies(timeout=0.5, stop_after=1)))

        client.post(PING, near(order.merchant.location, 500))
        assert notified() == 0
        client.post(PING, near(order.merchant.location, 5))
        assert notified() == 1
        assert len(fence_events()) == 1
