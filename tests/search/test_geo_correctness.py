"""Geo answers against brute-force references: pyproj's geodesics and shapely's polygons."""

import random

import pytest
from shapely.geometry import Point as ShapelyPoint
from shapely.geometry import shape

from merchants.models import DeliveryZone, Merchant
from tests import factories
from tests.geo_fixtures import add_zones, build_city, geodesic_m, random_point

pytestmark = pytest.mark.django_db

EDGE_SLACK_M = 1.0
DISTANCE_TOLERANCE_M = 0.5


@pytest.fixture
def city():
    shops, products = build_city(seed=7, merchants=300, radius_m=10_000)
    return shops, products


def reference_ranking(shops, lat, lng, radius):
    """[(distance, merchant)] within the radius by pyproj; and the set near the edge."""
    inside, edge = [], set()
    for shop in shops:
        distance = geodesic_m(lat, lng, shop.location.y, shop.location.x)
        if abs(distance - radius) <= EDGE_SLACK_M:
            edge.add(shop.pk)
        elif distance < radius:
            inside.append((distance, shop.pk))
    return sorted(inside), edge


@pytest.mark.parametrize("seed", range(6))
def test_products_nearby_matches_geodesic_reference(city, api_client, seed):
    shops, products = city
    product_of = {p.merchant_id: p.pk for p in products}
    rng = random.Random(seed)
    lat, lng = random_point(rng, radius_m=8_000)
    radius = rng.choice([1500, 2500, 3500])
    expected, edge = reference_ranking(shops, lat, lng, radius)
    assert len(expected) < 100, "the reference must fit in one answer"

    response = api_client.get(
        "/api/v1/products/nearby/", {"lat": lat, "lng": lng, "radius": radius, "limit": 100}
    )
    assert response.status_code == 200
    results = [r for r in response.json()["results"] if r["merchant"]["id"] not in edge]
    assert [r["product"]["id"] for r in results] == [product_of[m] for _, m in expected]
    for result, (distance, _merchant) in zip(results, expected, strict=True):
        assert result["distance_m"] == pytest.approx(distance, abs=DISTANCE_TOLERANCE_M)


@pytest.mark.parametrize("seed", range(6))
def test_merchants_nearby_matches_geodesic_reference(city, api_client, seed):
    shops, _ = city
    rng = random.Random(100 + seed)
    lat, lng = random_point(rng, radius_m=8_000)
    radius = rng.choice([1000, 2000, 3000])
    expected, edge = reference_ranking(shops, lat, lng, radius)

    response = api_client.get(
        "/api/v1/merchants/nearby/", {"lat": lat, "lng": lng, "radius": radius, "limit": 100}
    )
    assert response.status_code == 200
    results = [r for r in response.json()["results"] if r["id"] not in edge]
    assert [r["id"] for r in results] == [m for _, m in expected]
    for result, (distance, _m) in zip(results, expected, strict=True):
        assert result["distance_m"] == pytest.approx(distance, abs=DISTANCE_TOLERANCE_M)


def test_nearby_limit_keeps_the_nearest(city, api_client):
    shops, _products = city
    lat, lng = 52.52, 13.405
    expected, _ = reference_ranking(shops, lat, lng, 5000)
    response = api_client.get(
        "/api/v1/products/nearby/", {"lat": lat, "lng": lng, "radius": 5000, "limit": 5}
    )
    merchant_ids = [r["merchant"]["id"] for r in response.json()["results"]]
    assert merchant_ids == [m for _, m in expected[:5]]


@pytest.mark.parametrize("limit", [1, 2, 5, 12])
def test_merchants_nearby_under_a_limit_keeps_the_nearest_on_the_spheroid(city, api_client, limit):
    """The index walks in sphere order: under a limit, the answer must still be the
    nearest merchants on the spheroid, ordered by the distance shown, ties by id."""
    shops, _ = city
    rng = random.Random(limit)
    for _ in range(8):
        lat, lng = random_point(rng, radius_m=6_000)
        expected, edge = reference_ranking(shops, lat, lng, 10_000)
        response = api_client.get(
            "/api/v1/merchants/nearby/", {"lat": lat, "lng": lng, "radius": 10_000, "limit": limit}
        )
        ids = [r["id"] for r in response.json()["results"]]
        if edge & set(ids):
            continue
        assert ids == [m for _, m in expected[:limit]]


def test_merchants_nearby_limit_one_is_the_nearest_on_the_spheroid(api_client):
    """At 52.52 N a shop 1,000.77 m north is nearer than one 1,002.71 m east, though the
    sphere says otherwise; the farther one was made first."""
    east = factories.merchant(lat=52.52, lng=13.419772)
    north = factories.merchant(lat=52.5289935, lng=13.405)
    answer = api_client.get(
        "/api/v1/merchants/nearby/", {"lat": 52.52, "lng": 13.405, "limit": 1}
    ).json()["results"]
    assert [row["id"] for row in answer] == [north.pk]
    both = api_client.get(
        "/api/v1/merchants/nearby/", {"lat": 52.52, "lng": 13.405, "limit": 2}
    ).json()["results"]
    assert [row["id"] for row in both] == [north.pk, east.pk]


def shapely_covering(zones, lng, lat):
    point = ShapelyPoint(lng, lat)
    covering = {}
    for zone in zones:
        if zone.is_active and shape(zone.area_geojson).covers(point):
            best = covering.get(zone.merchant_id)
            if best is None or (zone.delivery_fee, zone.pk) < (best.delivery_fee, best.pk):
                covering[zone.merchant_id] = zone
    return covering


def test_delivering_to_matches_shapely_including_boundaries(api_client):
    rng = random.Random(11)
    shops, _ = build_city(seed=11, merchants=120, radius_m=6_000)
    zones = add_zones(rng, shops)
    Merchant.objects.filter(pk__in=[s.pk for s in shops[:10]]).update(is_active=False)
    inactive = {s.pk for s in shops[:10]}
    for zone in zones:
        zone.area_geojson = {"type": "MultiPolygon", "coordinates": zone.area.coords}

    probes = [random_point(rng, radius_m=6_000) for _ in range(25)]
    # Points on zone boundaries: rectangle corners, and the midpoints of their meridian
    # edges, which are on the boundary in both the planar and the geodesic sense.
    for zone in zones[:40:2]:
        ring = zone.area.coords[0][0]
        (x0, y0), (x1, _), (_, y2) = ring[0], ring[1], ring[2]
        probes += [(y0, x0), (y2, x1), ((y0 + y2) / 2, x0), ((y0 + y2) / 2, x1)]

    by_id = {s.pk: s for s in shops}
    answered = 0
    for lat, lng in probes:
        reference = {
            m: z for m, z in shapely_covering(zones, lng, lat).items() if m not in inactive
        }
        response = api_client.get("/api/v1/merchants/delivering-to/", {"lat": lat, "lng": lng})
        assert response.status_code == 200
        results = response.json()["results"]
        assert {r["id"] for r in results} == set(reference), (lat, lng)
        distances = [r["distance_m"] for r in results]
        assert distances == sorted(distances)
        answered += len(results)
        for result in results:
            zone = reference[result["id"]]
            assert result["zone_id"] == zone.pk
            assert result["delivery_fee"] == f"{zone.delivery_fee:.2f}"
            assert result["min_order_amount"] == f"{zone.min_order_amount:.2f}"
            shop = by_id[result["id"]]
            expected = geodesic_m(lat, lng, shop.location.y, shop.location.x)
            assert result["distance_m"] == pytest.approx(expected, abs=DISTANCE_TOLERANCE_M)
    assert answered >= len(probes)  # the checks of each answer ran, many times over
    assert DeliveryZone.objects.count() == len(zones)


def test_deliverable_filter_keeps_only_covering_merchants(api_client):
    rng = random.Random(5)
    shops, _products = build_city(seed=5, merchants=80, radius_m=5_000)
    zones = add_zones(rng, shops)
    for zone in zones:
        zone.area_geojson = {"type": "MultiPolygon", "coordinates": zone.area.coords}
    covered = 0
    for lat, lng in [random_point(rng, radius_m=4_000) for _ in range(8)]:
        covering = set(shapely_covering(zones, lng, lat))
        covered += bool(covering)
        response = api_client.get(
            "/api/v1/products/nearby/",
            {"lat": lat, "lng": lng, "radius": 10_000, "limit": 100, "deliverable": "true"},
        )
        assert response.status_code == 200
        merchants = {r["merchant"]["id"] for r in response.json()["results"]}
        assert merchants == covering
    assert covered  # not only points that no zone covers
