"""The couriers step of `seed_demo`: couriers over the city, the demo courier, and
couriers on some of the orders in flight."""

import dataclasses
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from catalog.models import Product
from delivery.models import Courier, CourierStatus, Vehicle
from delivery.selectors import courier_candidates
from demo.seeding import (
    DEMO_PASSWORD,
    PRESETS,
    Progress,
    demo_seed,
    seed_options_build,
)
from geomarket.accounts.models import User
from inventory.models import Inventory
from merchants.models import DeliveryZone, Merchant
from orders.models import ACTIVE_DELIVERY_STATUSES, WAITING_STATUSES, Order

pytestmark = pytest.mark.django_db

ANCHOR = datetime(2026, 3, 14, 18, 30, tzinfo=UTC)
SIZES = {
    "merchants": 6,
    "products_per_merchant": 25,
    "seed": 5,
    "orders": 300,
    "orders_until": ANCHOR.isoformat(),
    "couriers": 30,
    "center": "52.52,13.405",
    "radius_km": 6,
}


def seed(**options) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("seed_demo", stdout=out, stderr=err, **{**SIZES, **options})
    return out.getvalue(), err.getvalue()


def rows(sql: str, params: dict | None = None) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params or {})
        return cursor.fetchall()


def scalar(sql: str, params: dict | None = None):
    return rows(sql, params)[0][0]


def client_with_token(username: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get(user__username=username)}")
    return client


def test_creates_the_requested_couriers_each_with_a_user_who_cannot_log_in():
    out, _ = seed()

    assert Courier.objects.count() == 30
    assert Courier.objects.values("user").distinct().count() == 30
    bulk = User.objects.filter(username__startswith="courier-")
    assert bulk.count() == 29
    assert set(Courier.objects.values_list("user__username", flat=True)) == {
        "demo-courier",
        *bulk.values_list("username", flat=True),
    }
    assert not any(user.has_usable_password() for user in bulk)
    assert not Token.objects.filter(user__in=bulk).exists()
    # Display names are people's names, and not all the same.
    names = list(Courier.objects.values_list("name", flat=True))
    assert all(len(name.split()) == 2 for name in names)
    assert len(set(names)) > 15
    assert "30 couriers" in out


def test_every_courier_is_inside_the_city_denser_in_the_centre():
    seed(couriers=300, center="48.137,11.575", radius_km=5)

    assert not Courier.objects.filter(location__isnull=True).exists()
    centre = "ST_GeogFromText('SRID=4326;POINT(11.575 48.137)')"
    outside = scalar(
        f"SELECT count(*) FROM delivery_courier WHERE NOT ST_DWithin(location, {centre}, 5000)"  # noqa: S608
    )
    assert outside == 0
    # The inner half of the radius is a quarter of the area, but holds far more of them.
    inner = scalar(
        f"SELECT count(*) FROM delivery_courier WHERE ST_DWithin(location, {centre}, 2500)"  # noqa: S608
    )
    assert inner > 0.35 * 300
    # Not all in the centre either.
    assert inner < 0.8 * 300


def test_vehicles_capacities_and_statuses_are_valid_and_mixed():
    seed(couriers=400)

    vehicles = dict(rows("SELECT vehicle, count(*) FROM delivery_courier GROUP BY 1"))
    assert set(vehicles) == set(Vehicle.values)
    assert vehicles["bike"] > vehicles["scooter"] > vehicles["car"]
    capacities = dict(rows("SELECT capacity, count(*) FROM delivery_courier GROUP BY 1"))
    assert set(capacities) == {1, 2, 3}
    assert capacities[1] > 0.55 * 400
    statuses = dict(rows("SELECT status, count(*) FROM delivery_courier GROUP BY 1"))
    assert set(statuses) <= set(CourierStatus.values)
    assert statuses["available"] > 0.5 * 400
    assert 0.1 * 400 < statuses["offline"] < 0.3 * 400


def test_couriers_on_duty_are_fresh_at_the_anchor_and_offline_ones_are_not():
    seed(couriers=200)

    ttl = timedelta(seconds=settings.COURIER_LOCATION_TTL)
    on_duty = Courier.objects.exclude(status="offline").values_list(
        "location_updated_at", flat=True
    )
    assert len(on_duty) > 100
    for seen in on_duty:
        # Fresh for at least the two minutes that a long seed may take to commit.
        assert ANCHOR - ttl + timedelta(minutes=2) <= seen < ANCHOR
    offline = Courier.objects.filter(status="offline").values_list("location_updated_at", flat=True)
    assert offline
    for seen in offline:
        assert ANCHOR - timedelta(days=4) < seen < ANCHOR - ttl
    assert not Courier.objects.filter(created_at__gte=ANCHOR).exists()


@pytest.mark.parametrize("couriers", [2, 4, 30])
def test_no_courier_is_over_capacity_and_busy_means_full(couriers):
    seed(couriers=couriers)

    loads = rows(
        "SELECT c.id, c.status, c.capacity, count(o.id) FROM delivery_courier c"
        " LEFT JOIN orders_order o ON o.courier_id = c.id AND o.status = ANY(%(active)s)"
        " GROUP BY c.id",
        {"active": list(ACTIVE_DELIVERY_STATUSES)},
    )
    assert len(loads) == couriers
    for courier_id, status, capacity, load in loads:
        assert load <= capacity, courier_id
        if status == "offline":
            assert load == 0, courier_id
        else:
            assert (status == "busy") == (load >= capacity), courier_id
    # Only orders in flight have a courier.
    assert (
        not Order.objects.filter(courier__isnull=False)
        .exclude(status__in=ACTIVE_DELIVERY_STATUSES)
        .exists()
    )
    assert Order.objects.filter(courier__isnull=False).count() == sum(load for *_, load in loads)


def test_orders_being_carried_have_a_courier_near_the_shop_and_some_wait_for_dispatch():
    seed()

    in_flight = Order.objects.filter(status__in=ACTIVE_DELIVERY_STATUSES)
    assert in_flight.count() == 8
    assert not in_flight.filter(status="picked_up", courier__isnull=True).exists()
    waiting = in_flight.filter(status__in=WAITING_STATUSES, courier__isnull=True)
    assert waiting.count() >= 3
    far = scalar(
        "SELECT count(*) FROM orders_order o JOIN merchants_merchant m ON m.id = o.merchant_id"
        " JOIN delivery_courier c ON c.id = o.courier_id JOIN accounts_user u ON u.id = c.user_id"
        " WHERE o.status = 'picked_up' AND u.username <> 'demo-courier'"
        " AND NOT ST_DWithin(c.location, m.location, 1500)"
    )
    assert far == 0


def test_the_demo_courier_logs_in_and_sees_the_demo_customers_order():
    out, _ = seed()

    user = User.objects.get(username="demo-courier")
    assert user.check_password(DEMO_PASSWORD)
    token = Token.objects.get(user=user).key
    assert token in out
    client = client_with_token("demo-courier")
    me = client.get("/api/v1/auth/me/")
    assert me.status_code == 200
    assert "courier" in me.json()["roles"]

    courier = Courier.objects.get(user=user)
    assert (courier.status, courier.capacity, courier.vehicle) == ("available", 2, "bike")
    near_centre = scalar(
        "SELECT ST_DWithin(location, ST_GeogFromText('SRID=4326;POINT(13.405 52.52)'), 1000)"
        " FROM delivery_courier WHERE id = %(id)s",
        {"id": courier.pk},
    )
    assert near_centre
    carried = Order.objects.get(courier=courier)
    assert carried.buyer.username == "demo-customer"
    assert carried.merchant.owner.username == "demo-owner"
    assert carried.status in ACTIVE_DELIVERY_STATUSES

    mine = client.get("/api/v1/couriers/me/orders/")
    assert mine.status_code == 200
    assert [order["id"] for order in mine.json()["results"]] == [carried.pk]
    profile = client.get("/api/v1/couriers/me/").json()
    assert (profile["id"], profile["active_orders"]) == (courier.pk, 1)
    assert f"courier {courier.pk}" in out
    assert f"assigned order {carried.pk}" in out


def test_right_after_seeding_dispatch_finds_couriers_for_the_waiting_orders():
    # No --orders-until: the seed is "now", as `make run` loads it.
    seed(orders_until=None)

    waiting = list(
        Order.objects.filter(status__in=WAITING_STATUSES, courier__isnull=True).select_related(
            "merchant"
        )
    )
    assert waiting
    operator = client_with_token("demo-operator")
    for order in waiting:
        answer = operator.get(f"/api/v1/orders/{order.pk}/courier-candidates/")
        assert answer.status_code == 200
        assert answer.json(), order.pk
    location = waiting[0].merchant.location
    found = courier_candidates(lat=location.y, lng=location.x, limit=100, radius_m=20_000)
    assert {row["id"] for row in found} == set(
        Courier.objects.exclude(status="offline")
        .exclude(status="busy")
        .values_list("id", flat=True)
    )


def couriers_snapshot(anchor: datetime = ANCHOR) -> list[tuple]:
    """Every courier without ids, its times relative to the anchor, with its orders."""
    carried: dict[int, list] = {}
    for courier_id, created_at, merchant in Order.objects.filter(courier__isnull=False).values_list(
        "courier_id", "created_at", "merchant__name"
    ):
        carried.setdefault(courier_id, []).append((created_at - anchor, merchant))
    return [
        (
            courier.user.username,
            courier.user.first_name,
            courier.user.last_name,
            courier.user.date_joined,
            courier.name,
            courier.vehicle,
            courier.status,
            courier.capacity,
            courier.location.coords,
            courier.location_updated_at - anchor,
            courier.created_at,
            sorted(carried.get(courier.pk, [])),
        )
        for courier in Courier.objects.select_related("user").order_by("id")
    ]


def rolled_back(snapshot, **options):
    with transaction.atomic():
        seed(**options)
        data = snapshot()
        transaction.set_rollback(True)
    return data


def test_the_same_seed_and_anchor_give_the_same_couriers():
    first = rolled_back(couriers_snapshot)
    second = rolled_back(couriers_snapshot)
    week_later = ANCHOR + timedelta(days=7)
    later = rolled_back(
        lambda: couriers_snapshot(anchor=week_later), orders_until=week_later.isoformat()
    )
    other = rolled_back(couriers_snapshot, seed=6)

    assert len(first) == 30
    assert any(orders for *_, orders in first)
    assert first == second
    assert first == later
    assert first != other


def everything_else() -> dict[str, list]:
    """What the steps before the couriers wrote, all but `orders_order.courier_id`."""
    return {
        "users": list(
            User.objects.exclude(username__startswith="courier-")
            .exclude(username="demo-courier")
            .order_by("id")
            .values_list("username", "first_name", "last_name", "date_joined")
        ),
        "merchants": list(
            Merchant.objects.order_by("id").values_list("name", "is_active", "created_at")
        ),
        "zones": list(DeliveryZone.objects.order_by("id").values_list("name", "delivery_fee")),
        "products": list(Product.objects.order_by("id").values_list("title", "price")),
        "inventory": list(
            Inventory.objects.order_by("product_id").values_list("product__title", "quantity")
        ),
        "orders": list(
            Order.objects.order_by("id").values_list(
                "status",
                "total",
                "created_at",
                "updated_at",
                "buyer__username",
                "merchant__name",
                "delivery_address__location",
            )
        ),
    }


def test_couriers_leave_what_the_earlier_steps_wrote_as_it_was():
    without = rolled_back(everything_else, couriers=0)
    with_couriers = rolled_back(everything_else, couriers=30)

    assert without["orders"]
    assert without == with_couriers


def test_the_number_of_queries_does_not_grow_with_the_couriers():
    def queries(**options) -> list[str]:
        with transaction.atomic(), CaptureQueriesContext(connection) as captured:
            seed(**options)
            transaction.set_rollback(True)
        return [query["sql"] for query in captured.captured_queries]

    few = queries(couriers=2)
    many = queries(couriers=500)

    assert len(few) == len(many)
    copies = [sql for sql in many if sql.startswith("COPY ")]
    assert sum('"delivery_courier"' in sql for sql in copies) == 1


def test_no_couriers_is_no_couriers_and_no_demo_courier():
    out, _ = seed(couriers=0)

    assert not Courier.objects.exists()
    assert not User.objects.filter(username__contains="courier").exists()
    assert not Order.objects.filter(courier__isnull=False).exists()
    assert "demo-courier" not in out
    assert "for all three" in out


def test_presets_and_the_couriers_option():
    assert PRESETS["demo"].couriers == 40
    assert PRESETS["bench"].couriers == 2_000
    with pytest.raises(CommandError, match="--couriers"):
        seed(couriers=-1)
    assert not Merchant.objects.exists()


def test_a_clashing_courier_name_is_refused_and_nothing_is_written():
    User.objects.create_user(username="courier-00007", password="x-Secret-123")

    with pytest.raises(CommandError, match="courier-00007"):
        seed()

    assert not Merchant.objects.exists()
    assert not Courier.objects.exists()
    assert not Order.objects.exists()


def test_the_demo_preset_has_40_couriers_in_every_status():
    out, _ = seed(
        merchants=None,
        products_per_merchant=None,
        orders=None,
        couriers=None,
        radius_km=None,
        seed=None,
    )

    assert Courier.objects.count() == 40
    assert set(Courier.objects.values_list("status", flat=True)) == set(CourierStatus.values)
    assert Order.objects.filter(courier__user__username="demo-courier").count() == 1
    assert "demo-courier" in out
    connection.check_constraints()


def test_a_seed_that_takes_minutes_still_commits_fresh_couriers():
    # As if the steps before the couriers had taken ten minutes (the bench seed takes
    # three): without --orders-until, the couriers hang off the moment they are written.
    started = seed_options_build(**{**SIZES, "orders_until": None})
    options = dataclasses.replace(
        started, orders_until=started.orders_until - timedelta(minutes=10)
    )
    demo_seed(options=options, if_empty=False, progress=Progress(write=None, interactive=False))

    fresh_since = timezone.now() - timedelta(seconds=settings.COURIER_LOCATION_TTL)
    on_duty = Courier.objects.exclude(status="offline")
    assert on_duty.count() > 15
    assert not on_duty.filter(location_updated_at__lt=fresh_since).exists()
    # The orders still end at their anchor.
    assert Order.objects.latest("created_at").created_at < options.orders_until
