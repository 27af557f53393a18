from datetime import UTC, datetime
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token

from catalog.models import Product, ProductCategory
from delivery.models import Courier
from demo.seeding import DEMO_PASSWORD, steps
from geomarket.accounts.models import User
from geomarket.accounts.roles import Role, user_roles
from geomarket.geo import geodesic_destination
from inventory.models import Inventory
from merchants.models import Address, Closure, DeliveryZone, Merchant, OpeningInterval, SlotPlan
from merchants.selectors import merchant_open_at
from merchants.services import MAX_ZONE_AREA_KM2, _refuse_overlaps
from orders.models import Order, OrderItem, OrderStatusChange

pytestmark = pytest.mark.django_db

# A fixed anchor keeps the orders, like everything else, equal for equal seeds.
SMALL = {
    "merchants": 4,
    "products_per_merchant": 6,
    "seed": 7,
    "orders": 30,
    "orders_until": "2026-03-14T18:30:00+00:00",
    "couriers": 3,
}


def seed(**options) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("seed_demo", stdout=out, stderr=err, **{**SMALL, **options})
    return out.getvalue(), err.getvalue()


def scalar(sql: str, params: dict | None = None):
    with connection.cursor() as cursor:
        cursor.execute(sql, params or {})
        return cursor.fetchone()[0]


def table_counts() -> dict[str, int]:
    return {
        model._meta.label: model.objects.count()
        for model in (
            User,
            Token,
            Address,
            Merchant,
            DeliveryZone,
            Product,
            Inventory,
            Order,
            OrderItem,
            OrderStatusChange,
            Courier,
        )
    }


def snapshot() -> dict[str, list]:
    """Everything generated from the seed, without ids (sequences move on after a rollback)."""
    return {
        "merchants": list(
            Merchant.objects.order_by("id").values_list(
                "name",
                "description",
                "phone",
                "is_active",
                "created_at",
                "owner__username",
                "address__line1",
                "address__postal_code",
            )
        ),
        "locations": [m.location.coords for m in Merchant.objects.order_by("id")],
        "zones": [
            (z.merchant.name, z.name, z.delivery_fee, z.min_order_amount, z.is_active, z.area.wkt)
            for z in DeliveryZone.objects.select_related("merchant").order_by("id")
        ],
        "products": list(
            Product.objects.order_by("id").values_list(
                "merchant__name",
                "category__slug",
                "title",
                "description",
                "price",
                "is_published",
                "created_at",
            )
        ),
        "inventory": list(
            Inventory.objects.order_by("product_id").values_list(
                "product__title", "quantity", "low_stock_threshold", "updated_at"
            )
        ),
        "orders": list(
            Order.objects.order_by("id").values_list(
                "status", "merchant__name", "buyer__username", "total", "created_at"
            )
        ),
    }


def seeded_and_rolled_back(**options) -> dict[str, list]:
    with transaction.atomic():
        seed(**options)
        data = snapshot()
        transaction.set_rollback(True)
    return data


def test_creates_the_requested_numbers_of_rows():
    seed(merchants=5, products_per_merchant=7)

    assert Merchant.objects.count() == 5
    # One per merchant and one per order.
    assert Address.objects.count() == 5 + 30
    assert Product.objects.count() == 35
    assert Inventory.objects.count() == 35
    assert ProductCategory.objects.count() == 12
    # One owner per merchant (the first is the demo owner), the demo customer and
    # operator, one bulk customer per ten orders, and one per courier.
    assert User.objects.count() == 5 + 2 + 3 + 3
    assert Courier.objects.count() == 3
    assert Token.objects.count() == 4
    assert Merchant.objects.filter(delivery_zones__isnull=True).count() == 0
    assert Order.objects.count() == 30


def test_the_demo_preset_is_25_merchants_1500_products_2000_orders_and_40_couriers():
    call_command("seed_demo", preset="demo", stdout=StringIO(), stderr=StringIO())

    assert Merchant.objects.count() == 25
    assert Product.objects.count() == 1500
    assert Order.objects.count() == 2000
    assert Courier.objects.count() == 40


def test_catalog_has_unique_category_slugs_and_some_unpublished_products():
    seed(merchants=10, products_per_merchant=40)

    slugs = list(ProductCategory.objects.values_list("slug", flat=True))
    assert len(slugs) == len(set(slugs)) == 12
    assert Product.objects.filter(is_published=False).exists()
    assert Product.objects.filter(is_published=True).count() > 350
    assert Product.objects.values("title").distinct().count() > 200
    assert not Product.objects.filter(price__lte=0).exists()


def test_merchant_categories_are_the_categories_of_its_products():
    seed(merchants=6, products_per_merchant=20)

    for merchant in Merchant.objects.prefetch_related("categories"):
        selling = set(merchant.products.values_list("category_id", flat=True))
        assert {c.pk for c in merchant.categories.all()} == selling


def test_merchants_sit_on_their_address_point_inside_the_area_and_an_active_zone():
    seed(merchants=12, center="48.137,11.575", radius_km=5)

    moved = scalar(
        "SELECT count(*) FROM merchants_merchant m JOIN merchants_address a ON a.id = m.address_id"
        " WHERE NOT ST_Equals(m.location::geometry, a.location::geometry)"
    )
    assert moved == 0
    outside_area = scalar(
        "SELECT count(*) FROM merchants_merchant WHERE NOT ST_DWithin("
        "location, ST_GeogFromText('SRID=4326;POINT(11.575 48.137)'), 5000)"
    )
    assert outside_area == 0
    uncovered = scalar(
        "SELECT count(*) FROM merchants_merchant m WHERE NOT EXISTS ("
        " SELECT 1 FROM merchants_deliveryzone z"
        " WHERE z.merchant_id = m.id AND z.is_active AND ST_Covers(z.area, m.location))"
    )
    assert uncovered == 0


def _rows(sql: str, params: dict | None = None) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params or {})
        return cursor.fetchall()


def test_every_zone_is_a_valid_multipolygon_around_its_merchant_under_the_area_limit():
    seed(merchants=40, products_per_merchant=0)

    zones = _rows(
        "SELECT z.id, ST_IsValid(z.area::geometry), GeometryType(z.area::geometry),"
        " ST_SRID(z.area::geometry), ST_Area(z.area) / 1e6, ST_Covers(z.area, m.location)"
        " FROM merchants_deliveryzone z JOIN merchants_merchant m ON m.id = z.merchant_id"
    )
    assert len(zones) >= 40
    for zone_id, valid, kind, srid, km2, covers in zones:
        assert valid, zone_id
        assert (kind, srid) == ("MULTIPOLYGON", 4326)
        assert 1 < km2 < MAX_ZONE_AREA_KM2
        assert covers, zone_id
    # Some merchants price a near and a far zone differently.
    two_zone_merchants = Merchant.objects.filter(delivery_zones__name="Extended area")
    assert two_zone_merchants.exists()
    for merchant in two_zone_merchants:
        near = merchant.delivery_zones.get(name="Nearby")
        far = merchant.delivery_zones.get(name="Extended area")
        assert near.delivery_fee < far.delivery_fee
        assert near.min_order_amount < far.min_order_amount


@pytest.mark.parametrize(
    ("lat", "lng", "bearing", "metres"),
    [
        (52.52, 13.405, 0, 1500),
        (52.52, 13.405, 90, 6000),
        (52.52, 13.405, 225, 25_000),
        (64.1466, -21.9426, 90, 5000),
        (-33.8688, 151.2093, 300, 12_000),
    ],
)
def test_zone_vertices_are_placed_by_geodesic_distance(lat, lng, bearing, metres):
    lat2, lng2 = geodesic_destination(lat=lat, lng=lng, bearing_deg=bearing, distance_m=metres)

    distance, azimuth = _rows(
        "SELECT ST_Distance(a, b), degrees(ST_Azimuth(a, b)) FROM"
        " (SELECT ST_MakePoint(%(lng)s, %(lat)s)::geography AS a,"
        " ST_MakePoint(%(lng2)s, %(lat2)s)::geography AS b) AS points",
        {"lng": lng, "lat": lat, "lng2": lng2, "lat2": lat2},
    )[0]
    assert distance == pytest.approx(metres, abs=0.01)
    assert (azimuth - bearing + 180) % 360 - 180 == pytest.approx(0, abs=1e-6)


def test_every_product_has_one_inventory_row_of_its_merchant_some_sold_out_some_low():
    seed(merchants=10, products_per_merchant=40)

    assert not Product.objects.filter(inventory__isnull=True).exists()
    mismatched = scalar(
        "SELECT count(*) FROM inventory_inventory i"
        " JOIN catalog_product p ON p.id = i.product_id WHERE p.merchant_id <> i.merchant_id"
    )
    assert mismatched == 0
    assert Inventory.objects.filter(quantity=0).exists()
    low = scalar(
        "SELECT count(*) FROM inventory_inventory"
        " WHERE quantity > 0 AND quantity <= low_stock_threshold"
    )
    assert low > 0
    assert Inventory.objects.filter(quantity__gt=10).exists()
    # The foreign keys are deferred; check them now rather than at a commit that never comes.
    connection.check_constraints()


def test_demo_accounts_have_their_roles_passwords_and_tokens():
    out, _ = seed()

    customer = User.objects.get(username="demo-customer")
    owner = User.objects.get(username="demo-owner")
    operator = User.objects.get(username="demo-operator")
    courier = User.objects.get(username="demo-courier")
    assert user_roles(customer) == [Role.CUSTOMER]
    assert user_roles(courier) == [Role.CUSTOMER, Role.COURIER]
    assert user_roles(owner) == [Role.CUSTOMER, Role.MERCHANT_OWNER]
    assert owner.merchant == Merchant.objects.order_by("id").first()
    assert user_roles(operator) == [Role.CUSTOMER, Role.OPERATOR]
    assert operator.is_superuser
    for user in (customer, owner, operator, courier):
        assert user.check_password(DEMO_PASSWORD)
        assert Token.objects.get(user=user).key in out
    assert DEMO_PASSWORD in out


def test_bulk_owners_own_one_merchant_each_and_cannot_log_in():
    seed(merchants=6)

    owners = (
        User.objects.exclude(username__startswith="demo-")
        .exclude(username__startswith="customer-")
        .exclude(username__startswith="courier-")
    )
    assert owners.count() == 5
    for owner in owners:
        assert not owner.has_usable_password()
        assert owner.merchant is not None
    assert not Token.objects.filter(user__in=owners).exists()


def test_the_same_seed_gives_the_same_data():
    first = seeded_and_rolled_back(seed=11, merchants=5, products_per_merchant=12)
    second = seeded_and_rolled_back(seed=11, merchants=5, products_per_merchant=12)

    assert first["products"]
    assert first == second


def test_another_seed_gives_other_data():
    first = seeded_and_rolled_back(seed=11, merchants=5, products_per_merchant=12)
    other = seeded_and_rolled_back(seed=12, merchants=5, products_per_merchant=12)

    for key in ("merchants", "locations", "zones", "products", "inventory", "orders"):
        assert first[key] != other[key], key


def test_if_empty_leaves_an_existing_dataset_alone():
    seed()
    before_counts, before_data = table_counts(), snapshot()

    out, _ = seed(if_empty=True, seed=99, merchants=9)

    assert "nothing seeded" in out
    assert table_counts() == before_counts
    assert snapshot() == before_data


def test_if_empty_seeds_an_empty_database():
    seed(if_empty=True)

    assert Merchant.objects.count() == SMALL["merchants"]


def test_seeding_over_existing_merchants_is_refused_and_changes_nothing():
    seed()
    before = table_counts()

    with pytest.raises(CommandError, match="already exist"):
        seed(seed=99)

    assert table_counts() == before


def test_a_clashing_username_is_refused_before_anything_is_written():
    User.objects.create_user(username="owner-00003", password="x-Secret-123")

    with pytest.raises(CommandError, match="owner-00003"):
        seed()

    assert Merchant.objects.count() == 0
    assert ProductCategory.objects.count() == 0


def test_a_failing_step_leaves_nothing_written(monkeypatch):
    def fail(ctx):
        raise RuntimeError("disk full")

    failing = steps.SeedStep(name="fail", run=fail, models=())
    monkeypatch.setattr(steps, "SEED_STEPS", (*steps.SEED_STEPS, failing))

    with pytest.raises(RuntimeError, match="disk full"):
        seed()

    assert all(count == 0 for count in table_counts().values())
    assert ProductCategory.objects.count() == 0


def test_ids_continue_after_the_seeded_blocks():
    seed()

    merchant = Merchant.objects.order_by("id").first()
    category = ProductCategory.objects.first()
    user = User.objects.create_user(username="after-seed", password="x-Secret-123")
    product = Product.objects.create(
        merchant=merchant, category=category, title="Late Addition", price="1.00"
    )
    Inventory.objects.create(merchant=merchant, product=product, quantity=1)

    assert user.pk > User.objects.exclude(pk=user.pk).order_by("-id").first().pk
    assert product.pk > Product.objects.exclude(pk=product.pk).order_by("-id").first().pk


def test_the_number_of_queries_does_not_grow_with_the_data():
    def queries(**options) -> list[str]:
        with transaction.atomic(), CaptureQueriesContext(connection) as captured:
            seed(**options)
            transaction.set_rollback(True)
        return [query["sql"] for query in captured.captured_queries]

    small = queries(merchants=2, products_per_merchant=2)
    large = queries(merchants=15, products_per_merchant=30)

    assert len(small) == len(large)
    # Among them the rollups' rebuild: its statistics and planner settings are three.
    assert len(large) < 57
    assert sum(sql.startswith("COPY ") for sql in large) >= 8


def test_progress_is_reported_per_step_on_stderr():
    _, err = seed()

    for label in (
        "users",
        "merchants",
        "delivery zones",
        "products",
        "inventory",
        "orders",
        "couriers",
    ):
        assert any(line.startswith(label) and "100%" in line for line in err.splitlines()), label


@pytest.mark.parametrize(
    "options",
    [
        {"center": "52.52"},
        {"center": "north,south"},
        {"center": "95,13"},
        {"merchants": 0},
        {"products_per_merchant": -1},
        {"radius_km": 0},
        {"center": "0,179.9"},
    ],
)
def test_invalid_options_are_refused(options):
    with pytest.raises(CommandError):
        seed(**options)

    assert Merchant.objects.count() == 0


def test_the_city_keeps_hours_closures_and_slot_plans():
    """Merchants keep hours by their kind, in Berlin's zone; the demo owner's merchant
    keeps none (always open) and delivers in slots; the hours are valid weeks."""
    seed(merchants=40, products_per_merchant=1)
    first = Merchant.objects.order_by("id").first()
    assert set(Merchant.objects.values_list("timezone", flat=True)) == {"Europe/Berlin"}
    with_hours = set(OpeningInterval.objects.values_list("merchant_id", flat=True))
    assert first.pk not in with_hours
    assert len(with_hours) == 40 - round(40 * 0.1)
    assert SlotPlan.objects.filter(merchant=first).exists()
    assert Closure.objects.exists()
    for merchant_id in with_hours:
        _refuse_overlaps(list(OpeningInterval.objects.filter(merchant_id=merchant_id).values()))
    # A Wednesday at 03:00 in Berlin: most shops are closed, the always-open ones are not.
    night = datetime(2026, 12, 9, 2, tzinfo=UTC)
    open_then = [
        m.pk for m in Merchant.objects.all() if merchant_open_at(merchant_id=m.pk, at=night)
    ]
    assert first.pk in open_then
    assert len(open_then) < 40 // 2


def test_hours_added_to_a_city_seeded_before_them_are_the_seeds_own():
    """`--add-hours` reads each merchant's kind back from its description, so it writes
    the very hours a fresh seed writes; and nothing once hours exist."""
    seed(merchants=30, products_per_merchant=1)

    def hours() -> tuple[list, list, list]:
        return (
            list(
                OpeningInterval.objects.order_by("id").values_list(
                    "merchant_id", "weekday", "opens", "closes"
                )
            ),
            list(Closure.objects.order_by("id").values_list("merchant_id", "period", "reason")),
            list(SlotPlan.objects.order_by("merchant_id").values_list("merchant_id", "capacity")),
        )

    seeded = hours()
    assert all(seeded)
    for model in (OpeningInterval, Closure, SlotPlan):
        model.objects.all().delete()
    Merchant.objects.update(timezone="UTC")
    out = StringIO()
    same = {"seed": SMALL["seed"], "orders_until": SMALL["orders_until"]}
    call_command("seed_demo", "--add-hours", stdout=out, **same)
    assert out.getvalue().splitlines()[0] == "Hours added."
    assert hours() == seeded
    assert set(Merchant.objects.values_list("timezone", flat=True)) == {"Europe/Berlin"}
    out = StringIO()
    call_command("seed_demo", "--add-hours", stdout=out)
    assert out.getvalue().splitlines()[0] == "Hours exist; nothing added."


def test_adding_hours_to_a_city_seeded_days_ago_brings_its_open_periods_up_to_date():
    seed(merchants=12, products_per_merchant=1)
    # As a city seeded long enough ago with no beat running: kept periods about to end.
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE merchants_merchant SET open_periods_span"
            " = tstzrange(now() - interval '15 days', now() + interval '1 hour')"
        )
    out = StringIO()
    call_command("seed_demo", "--add-hours", stdout=out)
    assert out.getvalue().splitlines() == [
        "Hours exist; nothing added.",
        "Open periods refreshed for 12 merchants.",
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM merchants_merchant"
            " WHERE upper(open_periods_span) < now() + interval '14 days'"
        )
        assert cursor.fetchone()[0] == 0


def test_the_bench_city_gives_every_merchant_hours_a_fifth_round_the_clock():
    seed(preset="bench", merchants=20, products_per_merchant=1)
    with_hours = set(OpeningInterval.objects.values_list("merchant_id", flat=True))
    assert with_hours == set(Merchant.objects.values_list("id", flat=True))
    night = datetime(2026, 12, 9, 4, 30, tzinfo=UTC)
    open_then = [
        m.pk for m in Merchant.objects.all() if merchant_open_at(merchant_id=m.pk, at=night)
    ]
    assert len(open_then) == 20 // 5
