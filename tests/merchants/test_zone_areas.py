"""A zone's area is held to one set of rules (`geomarket.geo.area_check`), which the zone
services run whichever way the area was given, and is written right-handed: exterior
rings counterclockwise, holes clockwise (RFC 7946 §3.1.6)."""

from decimal import Decimal
from importlib import import_module
from itertools import pairwise

import pytest
from django.contrib.gis.geos import GEOSGeometry, Polygon
from django.db import connection

from geomarket.errors import DomainError
from merchants.models import DeliveryZone
from merchants.services import delivery_zone_create, delivery_zone_update
from tests import factories
from tests.rows import rows

pytestmark = pytest.mark.django_db

RIGHT_HANDED = import_module("merchants.migrations.0024_zone_area_right_handed")

# 1,969 km² across the 180° meridian at the equator, as geography reads it.
ACROSS = [[179.8, 0.0], [-179.8, 0.0], [-179.8, 0.4], [179.8, 0.4], [179.8, 0.0]]

# Berlin: a square drawn clockwise, with a hole drawn counterclockwise.
CLOCKWISE = [[13.40, 52.50], [13.40, 52.52], [13.42, 52.52], [13.42, 52.50], [13.40, 52.50]]
HOLE_COUNTERCLOCKWISE = [
    [13.405, 52.505],
    [13.415, 52.505],
    [13.415, 52.515],
    [13.405, 52.515],
    [13.405, 52.505],
]


def zones_url(merchant_id: int) -> str:
    return f"/api/v1/merchants/{merchant_id}/delivery-zones/"


def _sql(statement: str, params=None) -> list[tuple] | None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall() if cursor.description else None


def _signed_area(ring: list[list[float]]) -> float:
    """Positive for a counterclockwise ring (the shoelace formula)."""
    return sum(x1 * y2 - x2 * y1 for (x1, y1), (x2, y2) in pairwise(ring)) / 2


def _right_handed(area: dict) -> bool:
    polygons = area["coordinates"] if area["type"] == "MultiPolygon" else [area["coordinates"]]
    return all(
        (_signed_area(ring) > 0) == (index == 0)
        for polygon in polygons
        for index, ring in enumerate(polygon)
    )


def test_an_area_across_the_antimeridian_is_refused_and_writes_nothing(as_user):
    owner = factories.user()
    shop = factories.merchant(owner=owner, lat=0.2, lng=179.9)
    body = {"name": "Taveuni", "area": {"type": "Polygon", "coordinates": [ACROSS]}}
    response = as_user(owner).post(zones_url(shop.pk), {**body, "delivery_fee": "1.00"})
    assert response.status_code == 400
    assert "split at ±180°, one part each side" in response.json()["area"][0]
    assert not DeliveryZone.objects.exists()
    assert _sql("SELECT count(*) FROM merchants_zone_tile_piece") == [(0,)]


def test_an_area_moved_across_the_antimeridian_is_refused_and_changes_nothing(as_user):
    owner = factories.user()
    shop = factories.merchant(owner=owner, lat=0.2, lng=179.9)
    zone = factories.zone(merchant=shop)
    before = rows(DeliveryZone)
    pieces = _sql("SELECT z, x, y FROM merchants_zone_tile_piece ORDER BY 1, 2, 3")
    response = as_user(owner).patch(
        f"{zones_url(shop.pk)}{zone.pk}/", {"area": {"type": "Polygon", "coordinates": [ACROSS]}}
    )
    assert response.status_code == 400
    assert "area" in response.json()
    assert rows(DeliveryZone) == before
    assert _sql("SELECT z, x, y FROM merchants_zone_tile_piece ORDER BY 1, 2, 3") == pieces


def test_the_two_halves_of_an_area_across_the_antimeridian_are_two_zones(as_user):
    owner = factories.user()
    shop = factories.merchant(owner=owner, lat=0.2, lng=179.9)
    client = as_user(owner)
    west = [[179.8, 0.0], [180.0, 0.0], [180.0, 0.4], [179.8, 0.4], [179.8, 0.0]]
    east = [[-180.0, 0.0], [-179.8, 0.0], [-179.8, 0.4], [-180.0, 0.4], [-180.0, 0.0]]
    for ring in (west, east):
        body = {"name": "Half", "area": {"type": "Polygon", "coordinates": [ring]}}
        response = client.post(zones_url(shop.pk), {**body, "delivery_fee": "1.00"})
        assert response.status_code == 201, response.json()
    for lng in (179.9, -179.9):
        found = as_user(None).get("/api/v1/merchants/delivering-to/", {"lat": 0.2, "lng": lng})
        assert [row["id"] for row in found.json()["results"]] == [shop.pk]


# Areas as the admin's form hands them to the services: GEOS geometries from its WKT, none
# of them ever read by the API's GeoJSON parser.
REFUSED = {
    "self-intersecting": "MULTIPOLYGON(((13.40 52.50,13.41 52.51,13.41 52.50,13.40 52.51,"
    "13.40 52.50)))",
    "longitude 181, which PostGIS folds to -179": "MULTIPOLYGON(((179.9 10,181 10,181 10.2,"
    "179.9 10.2,179.9 10)))",
    "latitude 91, which PostGIS folds to 89": "MULTIPOLYGON(((10 89.9,10.1 89.9,10.1 91,"
    "10 91,10 89.9)))",
    "across the antimeridian": "MULTIPOLYGON(((179.8 0,-179.8 0,-179.8 0.4,179.8 0.4,179.8 0)))",
    "an edge over the pole": "MULTIPOLYGON(((0 89.9,180 89.9,180 89.95,0 89.95,0 89.9)))",
    "round the pole": "MULTIPOLYGON(((-180 89.9,-90 89.9,0 89.9,90 89.9,180 89.9,180 90,"
    "90 90,0 90,-90 90,-180 90,-180 89.9)))",
    "empty": "MULTIPOLYGON EMPTY",
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_the_services_refuse_an_area_the_api_would_whichever_way_it_came(case):
    shop = factories.merchant()
    area = GEOSGeometry(REFUSED[case], srid=4326)
    with pytest.raises(DomainError) as refused:
        delivery_zone_create(merchant=shop, name="Bad", area=area, delivery_fee=Decimal("1.00"))
    assert refused.value.field == "area"
    assert not DeliveryZone.objects.exists()


def test_an_update_to_a_self_intersecting_area_is_refused_and_changes_nothing():
    zone = factories.zone(merchant=factories.merchant())
    before = rows(DeliveryZone)
    bowtie = GEOSGeometry(REFUSED["self-intersecting"], srid=4326)
    with pytest.raises(DomainError) as refused:
        delivery_zone_update(zone=zone, data={"area": bowtie})
    assert refused.value.field == "area"
    assert rows(DeliveryZone) == before


def test_a_zone_sent_clockwise_is_answered_right_handed_everywhere(as_user):
    owner = factories.user()
    shop = factories.merchant(owner=owner, lat=52.51, lng=13.41)
    area = {"type": "Polygon", "coordinates": [CLOCKWISE, HOLE_COUNTERCLOCKWISE]}
    assert not _right_handed(area)
    created = as_user(owner).post(
        zones_url(shop.pk), {"name": "Ring", "area": area, "delivery_fee": "1.00"}
    )
    assert created.status_code == 201, created.json()
    assert _right_handed(created.json()["area"])
    listed = as_user(None).get(zones_url(shop.pk)).json()["results"]
    assert [_right_handed(zone["area"]) for zone in listed] == [True]
    features = as_user(None).get(zones_url(shop.pk), {"format": "geojson"}).json()["features"]
    assert [_right_handed(feature["geometry"]) for feature in features] == [True]
    assert DeliveryZone.objects.get().area.equals(Polygon(CLOCKWISE, HOLE_COUNTERCLOCKWISE))


def test_an_area_updated_clockwise_is_written_right_handed():
    zone = factories.zone(merchant=factories.merchant(lat=52.51, lng=13.41))
    clockwise = GEOSGeometry(
        "MULTIPOLYGON(((13.40 52.50,13.40 52.52,13.42 52.52,13.42 52.50,13.40 52.50)))",
        srid=4326,
    )
    delivery_zone_update(zone=zone, data={"area": clockwise})
    assert _sql("SELECT ST_IsPolygonCCW(area::geometry) FROM merchants_deliveryzone") == [(True,)]


def test_the_migration_turns_the_zones_written_before_and_what_follows_them_stays(as_user):
    shop = factories.merchant(lat=52.51, lng=13.41)
    clockwise = (
        "SRID=4326;MULTIPOLYGON(((13.40 52.50,13.40 52.52,13.42 52.52,13.42 52.50,13.40 52.50)))"
    )
    _sql(
        "INSERT INTO merchants_deliveryzone"
        " (merchant_id, name, area, delivery_fee, min_order_amount, is_active)"
        " VALUES (%s, 'Old', %s::geography, 1, 0, true)",
        [shop.pk, clockwise],
    )
    derived = (
        "SELECT (SELECT count(*) FROM merchants_zone_tile_piece),"
        " (SELECT count(*) FROM merchants_deliveryzonecell),"
        " (SELECT count(*) FROM merchants_zone_tile_outline)"
    )
    before = _sql(derived)
    assert _sql("SELECT ST_IsPolygonCCW(area::geometry) FROM merchants_deliveryzone") == [(False,)]

    _sql(RIGHT_HANDED.FORWARD)

    assert _sql(
        "SELECT ST_IsPolygonCCW(area::geometry), ST_Equals(area::geometry, %s::geometry)"
        " FROM merchants_deliveryzone",
        [clockwise],
    ) == [(True, True)]
    assert _sql(derived) == before
    found = as_user(None).get("/api/v1/merchants/delivering-to/", {"lat": 52.51, "lng": 13.41})
    assert [row["id"] for row in found.json()["results"]] == [shop.pk]
    zone = as_user(None).get(zones_url(shop.pk)).json()["results"][0]
    assert _right_handed(zone["area"])


def test_the_two_halves_of_an_area_across_the_antimeridian_are_one_zones_two_parts(as_user):
    # What the refusal above offers besides two zones.
    owner = factories.user()
    shop = factories.merchant(owner=owner, lat=0.2, lng=179.9)
    west = [[179.8, 0.0], [180.0, 0.0], [180.0, 0.4], [179.8, 0.4], [179.8, 0.0]]
    east = [[-180.0, 0.0], [-179.8, 0.0], [-179.8, 0.4], [-180.0, 0.4], [-180.0, 0.0]]
    area = {"type": "MultiPolygon", "coordinates": [[west], [east]]}
    body = {"name": "Taveuni", "area": area, "delivery_fee": "1.00"}
    response = as_user(owner).post(zones_url(shop.pk), body)
    assert response.status_code == 201, response.json()
    for lng in (179.9, -179.9):
        found = as_user(None).get("/api/v1/merchants/delivering-to/", {"lat": 0.2, "lng": lng})
        assert [row["id"] for row in found.json()["results"]] == [shop.pk]
