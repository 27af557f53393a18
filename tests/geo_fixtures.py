"""Random cities for geo correctness tests, inserted in bulk."""

import random
from decimal import Decimal

from django.contrib.gis.geos import MultiPolygon, Point, Polygon
from django.db import connection
from pyproj import Geod

from catalog.models import Product, ProductCategory
from geomarket.accounts.models import User
from inventory.models import Inventory
from merchants.models import Address, DeliveryZone, Merchant

GEOD = Geod(ellps="WGS84")
CENTER = (52.52, 13.405)


def random_point(rng: random.Random, *, radius_m: float, center=CENTER) -> tuple[float, float]:
    """(lat, lng) uniformly over a disc around the centre, placed geodesically."""
    bearing = rng.uniform(0, 360)
    distance = radius_m * rng.random() ** 0.5
    lng, lat, _ = GEOD.fwd(center[1], center[0], bearing, distance)
    return lat, lng


def geodesic_m(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    return GEOD.inv(lng1, lat1, lng2, lat2)[2]


def build_city(*, seed: int, merchants: int, radius_m: float, products_each: int = 1):
    """Active merchants with one or more published, stocked products each."""
    rng = random.Random(seed)
    tag = seed % 100000
    users = User.objects.bulk_create(
        [User(username=f"geo{tag}-{i}", password="!") for i in range(merchants)]
    )
    points = [random_point(rng, radius_m=radius_m) for _ in range(merchants)]
    addresses = Address.objects.bulk_create(
        [
            Address(
                line1=f"Street {i}",
                city="Berlin",
                postal_code="10115",
                location=Point(lng, lat, srid=4326),
            )
            for i, (lat, lng) in enumerate(points)
        ]
    )
    shops = Merchant.objects.bulk_create(
        [
            Merchant(owner=user, name=f"Shop {i}", address=address, location=address.location)
            for i, (user, address) in enumerate(zip(users, addresses, strict=True))
        ]
    )
    category = ProductCategory.objects.create(name=f"Geo {tag}", slug=f"geo-{tag}")
    products = Product.objects.bulk_create(
        [
            Product(
                merchant=shop, category=category, title=f"Item {shop.pk}-{k}", price=Decimal("1.00")
            )
            for shop in shops
            for k in range(products_each)
        ]
    )
    Inventory.objects.bulk_create(
        [Inventory(merchant_id=p.merchant_id, product=p, quantity=5) for p in products]
    )
    return shops, products


def rectangle(*, lat: float, lng: float, half_lat: float, half_lng: float) -> MultiPolygon:
    ring = [
        (lng - half_lng, lat - half_lat),
        (lng + half_lng, lat - half_lat),
        (lng + half_lng, lat + half_lat),
        (lng - half_lng, lat + half_lat),
        (lng - half_lng, lat - half_lat),
    ]
    return MultiPolygon(Polygon(ring, srid=4326), srid=4326)


def star(rng: random.Random, *, lat: float, lng: float, radius_m: float) -> MultiPolygon:
    """An irregular, valid (star-shaped around its centre) polygon."""
    ring = []
    for k in range(9):
        bearing = k * 40 + rng.uniform(-10, 10)
        x, y, _ = GEOD.fwd(lng, lat, bearing, radius_m * rng.uniform(0.5, 1.0))
        ring.append((x, y))
    ring.append(ring[0])
    return MultiPolygon(Polygon(ring, srid=4326), srid=4326)


def add_zones(rng: random.Random, shops) -> list[DeliveryZone]:
    zones = []
    for shop in shops:
        lat, lng = shop.location.y, shop.location.x
        zones.append(
            DeliveryZone(
                merchant=shop,
                name="near",
                area=rectangle(
                    lat=lat,
                    lng=lng,
                    half_lat=rng.uniform(0.005, 0.02),
                    half_lng=rng.uniform(0.008, 0.03),
                ),
                delivery_fee=Decimal(rng.choice(["1.50", "2.00", "2.50"])),
                min_order_amount=Decimal("10.00"),
                is_active=rng.random() > 0.1,
            )
        )
        zones.append(
            DeliveryZone(
                merchant=shop,
                name="far",
                area=star(rng, lat=lat, lng=lng, radius_m=rng.uniform(1500, 4000)),
                delivery_fee=Decimal(rng.choice(["2.00", "3.50", "4.00"])),
                min_order_amount=Decimal("20.00"),
                is_active=rng.random() > 0.1,
            )
        )
    return DeliveryZone.objects.bulk_create(zones)


def st_covers(points, zone_ids) -> set[tuple[int, int]]:
    """(point index, zone id) for every point each active zone covers, by plain
    `ST_Covers` on the zone's geography: the reference."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT p.n - 1, z.id
            FROM unnest(%s::float8[], %s::float8[]) WITH ORDINALITY AS p(lng, lat, n)
            JOIN merchants_deliveryzone z
              ON z.id = ANY(%s) AND z.is_active
             AND ST_Covers(z.area, ST_SetSRID(ST_MakePoint(p.lng, p.lat), 4326)::geography)
            """,
            [[lng for _, lng in points], [lat for lat, _ in points], zone_ids],
        )
        return set(cursor.fetchall())
