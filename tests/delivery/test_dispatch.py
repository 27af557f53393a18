import random

import pytest

from delivery.models import Courier
from delivery.services import orders_assign_priority
from orders.models import Order
from tests import factories
from tests.delivery.placing import one_item_order, stocked_shop
from tests.geo_fixtures import GEOD, random_point
from tests.market import ORDERS, order_body
from tests.threads import run_in_threads

pytestmark = pytest.mark.django_db


def place(market, qty=2):
    response = market["client"].post(ORDERS, order_body(market, (market["bread"], qty)))
    assert response.status_code == 201
    return Order.objects.get(pk=response.json()["id"])


def test_candidates_match_the_geodesic_reference(market, make_courier, as_user):
    order = place(market)
    shop = market["shop"]
    rng = random.Random(3)
    couriers = [
        make_courier(lat=lat, lng=lng, vehicle=rng.choice(["bike", "car"]))
        for lat, lng in (
            random_point(rng, radius_m=8000, center=(shop.location.y, shop.location.x))
            for _ in range(60)
        )
    ]
    expected = sorted(
        (GEOD.inv(shop.location.x, shop.location.y, c.location.x, c.location.y)[2], c.pk)
        for c in couriers
    )
    operator = as_user(factories.user(is_staff=True))
    rows = operator.get(f"{ORDERS}{order.pk}/courier-candidates/", {"limit": 25}).json()
    assert [row["courier_id"] for row in rows] == [pk for _, pk in expected[:25]]
    for row, (distance, _) in zip(rows, expected, strict=False):
        assert row["distance_m"] == pytest.approx(distance, abs=0.5)
        assert row["eta_s"] > 0
        assert set(row) == {"courier_id", "name", "vehicle", "distance_m", "eta_s"}


def test_candidates_exclude_unavailable_stale_and_full_couriers(market, make_courier, as_user):
    order = place(market)
    lat, lng = market["shop"].location.y, market["shop"].location.x
    good = make_courier(lat=lat, lng=lng + 0.001)
    make_courier(lat=lat, lng=lng, status="offline")
    make_courier(lat=lat, lng=lng, status="busy")
    make_courier(lat=lat, lng=lng, age_s=301)
    full = make_courier(lat=lat, lng=lng, capacity=1)
    other = place(market)
    Order.objects.filter(pk=other.pk).update(courier=full)
    roomy = make_courier(lat=lat, lng=lng + 0.002, capacity=2)
    Order.objects.filter(pk=place(market).pk).update(courier=roomy)
    rows = market["owner_client"].get(f"{ORDERS}{order.pk}/courier-candidates/").json()
    assert [row["courier_id"] for row in rows] == [good.pk, roomy.pk]


def test_candidates_permissions(market, make_courier, as_user):
    order = place(market)
    url = f"{ORDERS}{order.pk}/courier-candidates/"
    assert market["client"].get(url).status_code == 403
    assert as_user(factories.merchant().owner).get(url).status_code == 404
    assert as_user(None).get(url).status_code == 401


def test_assignment_minimises_total_distance_not_greedy(market, make_courier, as_user):
    """Greedy would give the older order its nearest courier and send the other far away."""
    shop = market["shop"]
    lat, lng = shop.location.y, shop.location.x
    second_shop = factories.merchant(lat=lat, lng=lng + 0.02)
    factories.zone(merchant=second_shop, min_order="0")
    item = factories.product(merchant=second_shop, price="5.00")
    factories.stock(product=item, quantity=5)
    first = place(market)
    second_body = order_body(market, (item, 1))
    second_body["merchant_id"] = second_shop.pk
    second = Order.objects.get(pk=market["client"].post(ORDERS, second_body).json()["id"])
    between = make_courier(lat=lat, lng=lng + 0.011)  # a little nearer to the first shop
    behind = make_courier(lat=lat, lng=lng - 0.002)  # close to the first, far from the second
    response = as_user(factories.user(is_staff=True)).post(
        f"{ORDERS}priority-assignment/", {}, format="json"
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    pairs = {a["order_id"]: a["courier_id"] for a in body["assignments"]}
    assert pairs == {first.pk: behind.pk, second.pk: between.pk}
    assert body["unassigned"] == []
    assert body["total_distance_m"] == pytest.approx(
        sum(a["distance_m"] for a in body["assignments"]), abs=0.01
    )


def test_capacity_distance_and_age_are_honoured(market, make_courier, as_user):
    lat, lng = market["shop"].location.y, market["shop"].location.x
    orders = [place(market) for _ in range(4)]
    pair = make_courier(lat=lat, lng=lng, capacity=2)
    make_courier(lat=lat + 0.2, lng=lng)  # some 22 km away: out of reach
    operator = as_user(factories.user(is_staff=True))
    body = operator.post(
        f"{ORDERS}priority-assignment/", {"max_distance_m": 5000}, format="json"
    ).json()
    assert [a["order_id"] for a in body["assignments"]] == [orders[0].pk, orders[1].pk]
    assert {a["courier_id"] for a in body["assignments"]} == {pair.pk}
    assert body["unassigned"] == [orders[2].pk, orders[3].pk]
    pair.refresh_from_db()
    assert pair.status == "busy"
    again = operator.post(f"{ORDERS}priority-assignment/", {}, format="json").json()
    assert again["assignments"] == []


def test_only_operators_assign(market, as_user):
    url = f"{ORDERS}priority-assignment/"
    assert market["owner_client"].post(url, {}, format="json").status_code == 403
    assert market["client"].post(url, {}, format="json").status_code == 403
    assert as_user(None).post(url, {}, format="json").status_code == 401
    bad = as_user(factories.user(is_staff=True)).post(url, {"max_distance_m": -1}, format="json")
    assert bad.status_code == 400


def test_assigned_courier_carries_the_order(
    market, make_courier, as_user, django_assert_num_queries
):
    lat, lng = market["shop"].location.y, market["shop"].location.x
    courier = make_courier(lat=lat, lng=lng)
    rival = make_courier(lat=lat, lng=lng)
    order = place(market)
    Order.objects.filter(pk=order.pk).update(status="ready")
    orders_assign_priority(order_ids=[order.pk])
    order.refresh_from_db()
    carrier = courier if order.courier_id == courier.pk else rival
    stranger = rival if carrier is courier else courier
    carrier_client = as_user(carrier.user)
    # the token with the caller's courier id, then the page with its lines and count in one
    # statement
    with django_assert_num_queries(2):
        mine = carrier_client.get("/api/v1/couriers/me/orders/").json()["results"]
    assert [o["id"] for o in mine] == [order.pk]
    assert mine[0]["courier_id"] == carrier.pk
    assert as_user(stranger.user).get("/api/v1/couriers/me/orders/").json()["results"] == []
    assert (
        as_user(stranger.user)
        .post(f"{ORDERS}{order.pk}/status/", {"status": "picked_up"})
        .status_code
        == 404
    )
    assert (
        carrier_client.post(f"{ORDERS}{order.pk}/status/", {"status": "picked_up"}).status_code
        == 200
    )
    carrier.refresh_from_db()
    assert carrier.status == "busy"
    assert (
        carrier_client.post(f"{ORDERS}{order.pk}/status/", {"status": "cancelled"}).status_code
        == 409
    )
    assert (
        carrier_client.post(f"{ORDERS}{order.pk}/status/", {"status": "delivered"}).status_code
        == 200
    )
    carrier.refresh_from_db()
    assert carrier.status == "available"
    assert carrier_client.get("/api/v1/couriers/me/orders/").json()["results"] == []


@pytest.mark.django_db(transaction=True)
def test_concurrent_assignments_never_double_assign_or_overfill(make_courier):
    shop, item = stocked_shop(price="1.00", quantity=500)
    buyer = factories.user()
    for _ in range(30):
        one_item_order(shop=shop, item=item, buyer=buyer, east_deg=0)
    rng = random.Random(9)
    couriers = [
        make_courier(
            lat=shop.location.y + rng.uniform(-0.01, 0.01),
            lng=shop.location.x + rng.uniform(-0.01, 0.01),
            capacity=rng.choice([1, 2]),
        )
        for _ in range(12)
    ]
    racing = run_in_threads(*[orders_assign_priority] * 4)
    assigned = [(a["order_id"], a["courier_id"]) for r in racing for a in r.assignments]
    assert len({order_id for order_id, _ in assigned}) == len(assigned)
    for courier in Courier.objects.all():
        assert Order.objects.filter(courier=courier).count() <= courier.capacity
    # Calls that found the orders or couriers locked by another left them alone; one more
    # run, alone, fills what they left, and must find every slot that the race used still
    # counted once.
    assigned += [(a["order_id"], a["courier_id"]) for a in orders_assign_priority().assignments]
    assert len({order_id for order_id, _ in assigned}) == len(assigned)
    assert dict(assigned) == dict(
        Order.objects.exclude(courier=None).values_list("id", "courier_id")
    )
    slots = sum(c.capacity for c in couriers)
    assert slots < 30  # more orders than slots: every slot can be filled
    assert len(assigned) == slots
    for courier in Courier.objects.all():
        assert Order.objects.filter(courier=courier).count() == courier.capacity
        assert courier.status == "busy"


def test_a_courier_patch_changes_what_it_names(make_courier, as_user):
    courier = make_courier(lat=52.52, lng=13.405)
    client = as_user(courier.user)
    unchanged = client.patch("/api/v1/couriers/me/", {}, format="json")
    assert unchanged.status_code == 200
    assert unchanged.json()["status"] == courier.status
    offline = client.patch("/api/v1/couriers/me/", {"status": "offline"}, format="json")
    assert offline.json()["status"] == "offline"
    refused = client.patch("/api/v1/couriers/me/", {"status": "busy"}, format="json")
    assert refused.status_code == 400


def test_the_nearest_candidates_are_the_geodesically_nearest_not_the_spheres(
    market, make_courier, as_user
):
    """Index order is distance on a sphere, which at Berlin's latitude stretches east-west
    distances about 0.3% less than north-south ones: a courier 5,000 m east comes before
    one 4,990 m north on the sphere, but not on the ellipsoid. A `limit` cut in the
    sphere's order answered the farther one."""
    order = place(market)
    shop = market["shop"].location
    east_lng, east_lat, _ = GEOD.fwd(shop.x, shop.y, 90, 5_000)
    north_lng, north_lat, _ = GEOD.fwd(shop.x, shop.y, 0, 4_990)
    east = make_courier(lat=east_lat, lng=east_lng)
    north = make_courier(lat=north_lat, lng=north_lng)
    operator = as_user(factories.user(is_staff=True))
    url = f"{ORDERS}{order.pk}/courier-candidates/"
    nearest = operator.get(url, {"limit": 1}).json()
    assert [row["courier_id"] for row in nearest] == [north.pk]
    assert nearest[0]["distance_m"] == pytest.approx(4_990, abs=0.01)
    both = operator.get(url, {"limit": 2}).json()
    assert [row["courier_id"] for row in both] == [north.pk, east.pk]


def test_given_orders_that_are_not_waiting_are_in_neither_list(market, make_courier, as_user):
    """Of the `order_ids` asked for, only waiting ones are assigned or answered unassigned:
    one already carried or over is not this call's (a concurrent call may hold one it is
    assigning). Duplicates count once."""
    shop = market["shop"].location
    waiting, no_slot_left, carried, cancelled = (place(market) for _ in range(4))
    make_courier(lat=shop.y, lng=shop.x, capacity=1)
    carrier = make_courier(lat=shop.y + 0.5, lng=shop.x, capacity=5)  # out of reach
    Order.objects.filter(pk=carried.pk).update(courier=carrier)
    Order.objects.filter(pk=cancelled.pk).update(status="cancelled")
    asked = [cancelled.pk, waiting.pk, carried.pk, no_slot_left.pk, waiting.pk]
    body = (
        as_user(factories.user(is_staff=True))
        .post(f"{ORDERS}priority-assignment/", {"order_ids": asked}, format="json")
        .json()
    )
    assert [a["order_id"] for a in body["assignments"]] == [waiting.pk]
    assert body["unassigned"] == [no_slot_left.pk]
    assert Order.objects.get(pk=carried.pk).courier_id == carrier.pk
    assert Order.objects.get(pk=cancelled.pk).courier_id is None


def test_unknown_order_ids_are_400_and_assign_nothing(market, make_courier, as_user):
    order = place(market)
    make_courier(lat=market["shop"].location.y, lng=market["shop"].location.x)
    response = as_user(factories.user(is_staff=True)).post(
        f"{ORDERS}priority-assignment/",
        {"order_ids": [order.pk, order.pk + 1000, order.pk + 1001]},
        format="json",
    )
    assert response.status_code == 400
    assert response.json() == {
        "order_ids": [f"Unknown orders: {[order.pk + 1000, order.pk + 1001]}."]
    }
    assert Order.objects.get(pk=order.pk).courier_id is None


@pytest.mark.parametrize(
    ("status", "carried"),
    [
        ("rejected", False),
        ("delivered", False),
        ("cancelled", False),
        ("failed", False),
        ("picked_up", True),
        ("ready", True),
        ("confirmed", True),
    ],
)
def test_candidates_of_an_order_not_waiting_are_409(market, make_courier, as_user, status, carried):
    """Candidates are for assigning a waiting order (`confirmed|preparing|ready`, no
    courier), the orders `priority-assignment` assigns: for any other the ranked list is
    an answer to a question nobody can act on."""
    order = place(market)
    shop = market["shop"].location
    courier = make_courier(lat=shop.y, lng=shop.x, capacity=5)
    Order.objects.filter(pk=order.pk).update(status=status, courier=courier if carried else None)
    response = market["owner_client"].get(f"{ORDERS}{order.pk}/courier-candidates/")
    assert response.status_code == 409, response.json()
    assert response.json()["code"] == "order_not_waiting"


def test_candidates_of_a_waiting_order_in_every_waiting_status(market, make_courier, as_user):
    order = place(market)
    shop = market["shop"].location
    courier = make_courier(lat=shop.y, lng=shop.x)
    url = f"{ORDERS}{order.pk}/courier-candidates/"
    for status in ("confirmed", "preparing", "ready"):
        Order.objects.filter(pk=order.pk).update(status=status)
        response = market["owner_client"].get(url)
        assert response.status_code == 200, (status, response.json())
        assert [row["courier_id"] for row in response.json()] == [courier.pk]
