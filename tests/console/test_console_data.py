"""`/console/` and `/console/data/`: operators see every merchant's, an owner its own,
anyone else nothing."""

import pytest
from django.contrib.gis.geos import Point

from delivery.models import Courier
from delivery.services import courier_create
from orders.models import Order
from tests import factories
from tests.console.shops import shop_with_order
from tests.market import api_client_as

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_shops():
    mine = shop_with_order("Mine", 52.52)
    theirs = shop_with_order("Theirs", 52.53)
    courier = courier_create(user=factories.user(), name="Rider", vehicle="bike", capacity=2)
    Courier.objects.filter(pk=courier.pk).update(location=Point(13.4, 52.5, srid=4326))
    return {"mine": mine, "theirs": theirs, "courier": courier}


def test_an_operator_sees_every_merchants_orders_and_every_courier(client, two_shops):
    operator = factories.user(is_staff=True)
    client.force_login(operator)
    data = client.get("/console/data/").json()
    assert data["operator"] is True
    assert {order["id"] for order in data["orders"]} == {
        two_shops["mine"][2].pk,
        two_shops["theirs"][2].pk,
    }
    assert [courier["id"] for courier in data["couriers"]] == [two_shops["courier"].pk]
    assert data["couriers"][0]["location"] == {"type": "Point", "coordinates": [13.4, 52.5]}
    assert len(data["revenue"]) == 30


def test_an_owner_sees_only_its_merchant(client, two_shops):
    owner, shop, order = two_shops["mine"]
    client.force_login(owner)
    data = client.get("/console/data/").json()
    assert (data["operator"], data["merchant_id"]) == (False, shop.pk)
    assert [row["id"] for row in data["orders"]] == [order.pk]
    assert data["orders"][0]["merchant_id"] == shop.pk
    # No courier carries its orders.
    assert data["couriers"] == []
    assert all(row["merchant_id"] == shop.pk for row in data["top_merchants"])


@pytest.mark.parametrize(
    ("status", "shown"),
    [("confirmed", False), ("preparing", False), ("ready", True), ("picked_up", True)],
)
def test_an_owner_sees_its_orders_courier_only_once_the_order_is_ready(
    client, two_shops, status, shown
):
    owner, _, order = two_shops["mine"]
    courier = two_shops["courier"]
    Order.objects.filter(pk=order.pk).update(courier=courier, status=status)
    client.force_login(owner)
    couriers = client.get("/console/data/").json()["couriers"]
    assert [row["id"] for row in couriers] == ([courier.pk] if shown else [])
    # As the order's tracking shows it to the owner.
    tracked = api_client_as(owner).get(f"/api/v1/orders/{order.pk}/tracking/").json()
    assert (tracked["courier"] is not None) is shown


def test_an_owner_sees_a_courier_as_its_orders_tracking_shows_it(client, two_shops):
    """Not how many orders it carries, nor whether it is busy or has room: with another
    merchant's order aboard, those would tell the owner of that merchant's business."""
    courier = two_shops["courier"]
    (owner, _, mine), (_, _, theirs) = two_shops["mine"], two_shops["theirs"]
    Order.objects.filter(pk=mine.pk).update(courier=courier, status="ready")
    Order.objects.filter(pk=theirs.pk).update(courier=courier, status="picked_up")
    Courier.objects.filter(pk=courier.pk).update(status="busy")
    client.force_login(owner)
    (seen,) = client.get("/console/data/").json()["couriers"]
    tracked = api_client_as(owner).get(f"/api/v1/orders/{mine.pk}/tracking/").json()
    assert seen == tracked["courier"]
    assert set(seen) == {"id", "name", "vehicle", "location", "location_updated_at"}
    # The operator's console has it all.
    client.force_login(factories.user(is_staff=True))
    (operators,) = client.get("/console/data/").json()["couriers"]
    assert (operators["active_orders"], operators["status"], operators["capacity"]) == (
        2,
        "busy",
        2,
    )


def test_customers_and_couriers_are_refused_and_strangers_sent_to_sign_in(client, two_shops):
    for path in ("/console/", "/console/data/"):
        answer = client.get(path)
        assert answer.status_code == 302
        assert answer["Location"].startswith("/console/login/")
    client.force_login(factories.user())
    for path in ("/console/", "/console/data/"):
        assert client.get(path).status_code == 403


def test_the_console_page_sets_the_csrf_cookie_and_its_config(client, two_shops):
    owner, shop, _ = two_shops["mine"]
    client.force_login(owner)
    page = client.get("/console/")
    assert page.status_code == 200
    assert "csrftoken" in page.cookies
    assert f'"merchantId": {shop.pk}' in page.content.decode()


def test_signing_in_on_the_login_page_itself_leads_to_the_console(client, make_user):
    owner = make_user(password="pw-Secret-123")
    factories.merchant(owner=owner)
    answer = client.post(
        "/console/login/", {"username": owner.username, "password": "pw-Secret-123"}
    )
    assert answer.status_code == 302
    assert answer["Location"] == "/console/"
    assert client.get(answer["Location"]).status_code == 200
    # Where a `next` is given, it still wins.
    client.logout()
    answer = client.post(
        "/console/login/?next=/console/data/",
        {"username": owner.username, "password": "pw-Secret-123"},
    )
    assert answer["Location"] == "/console/data/"
