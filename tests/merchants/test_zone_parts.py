"""Zone coverage from the zones' grid cells (`DeliveryZoneCell`) answers exactly what
`ST_Covers` on the zone's geography answers, boundaries included, and the cells follow
every write of a zone."""

import importlib
import json
import random
from decimal import Decimal

import pytest
from django.contrib.gis.geos import MultiPolygon, Point, Polygon
from django.db import connection
from rest_framework.test import APIClient

from merchants.models import DeliveryZone, DeliveryZoneCell
from merchants.selectors import merchants_delivering_to
from merchants.services import delivery_zone_delete, delivery_zone_update, merchant_update
from tests import factories
from tests.geo_fixtures import st_covers, star

pytestmark = pytest.mark.django_db


def polygon(ring) -> MultiPolygon:
    return MultiPolygon(Polygon([*ring, ring[0]], srid=4326), srid=4326)


def answered(lat: float, lng: float, limit: int = 500) -> list[dict]:
    """Delivering-to's results for the point."""
    body, _ = merchants_delivering_to(lat=lat, lng=lng, limit=limit)
    return json.loads(body)["results"]


def delivering(lat: float, lng: float) -> dict[int, int]:
    """Merchant id to the zone id delivering-to answers with, for every covering merchant."""
    return {row["id"]: row["zone_id"] for row in answered(lat, lng)}


def arc_points(zone_ids) -> list[tuple[float, float]]:
    """For every edge of the zones: its ends, the middle of its straight line in degrees,
    the middle of its great-circle arc, and points between and just beyond those two.
    Where arc and chord part, only the arc is the boundary."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT ST_X(ST_StartPoint(edge.geom)), ST_Y(ST_StartPoint(edge.geom)),
                   ST_X(ST_LineInterpolatePoint(edge.geom, 0.5)),
                   ST_Y(ST_LineInterpolatePoint(edge.geom, 0.5)),
                   ST_X(ST_PointN(arc.geom, 5)), ST_Y(ST_PointN(arc.geom, 5))
            FROM merchants_deliveryzone z,
                 ST_DumpSegments(z.area::geometry) edge,
                 ST_Segmentize(edge.geom::geography,
                               ST_Length(edge.geom::geography, false) / 8 + 0.001) AS s,
                 LATERAL (SELECT s::geometry AS geom) arc
            WHERE z.id = ANY(%s)
            """,
            [zone_ids],
        )
        rows = cursor.fetchall()
    points = []
    for start_x, start_y, chord_x, chord_y, arc_x, arc_y in rows:
        points.append((start_y, start_x))
        for t in (-1.0, -0.01, 0.0, 0.5, 1.0, 1.01, 2.0):
            points.append((chord_y + t * (arc_y - chord_y), chord_x + t * (arc_x - chord_x)))
    return points


def near_boundary(rng: random.Random, zone: DeliveryZone, count: int) -> list:
    """Random points over the zone's box and a little beyond, and random points within a
    few centimetres of random points of its edges."""
    xmin, ymin, xmax, ymax = zone.area.extent
    pad_x, pad_y = (xmax - xmin) * 0.1, (ymax - ymin) * 0.1
    points = [
        (rng.uniform(ymin - pad_y, ymax + pad_y), rng.uniform(xmin - pad_x, xmax + pad_x))
        for _ in range(count)
    ]
    ring = zone.area[0][0].coords
    for _ in range(count):
        k = rng.randrange(len(ring) - 1)
        (x0, y0), (x1, y1) = ring[k], ring[k + 1]
        t = rng.random()
        jitter = rng.choice([0.0, 1e-9, 1e-7, 1e-6, 1e-5])
        points.append(
            (
                y0 + t * (y1 - y0) + rng.uniform(-jitter, jitter),
                x0 + t * (x1 - x0) + rng.uniform(-jitter, jitter),
            )
        )
    return points


def assert_same_as_st_covers(points, zones):
    by_merchant = {zone.merchant_id: zone.pk for zone in zones}
    reference = st_covers(points, [zone.pk for zone in zones])
    for n, (lat, lng) in enumerate(points):
        answer = delivering(lat, lng)
        expected = {m: z for m, z in by_merchant.items() if (n, z) in reference}
        assert answer == expected, (lat, lng)


def test_cells_answer_equals_st_covers_around_random_zones():
    """Property: for random zones of every kind the code accepts, the cells' answer is
    the plain `ST_Covers` answer at random points, near-boundary points, vertices, and
    points between an edge's straight line and its arc."""
    rng = random.Random(20261202)
    zones = []
    for k in range(12):
        lat, lng = rng.uniform(-60, 70), rng.uniform(-170, 170)
        shop = factories.merchant(lat=lat, lng=lng)
        radius = rng.choice([300, 2_000, 8_000, 30_000])
        zones.append(
            factories.zone(merchant=shop, area=star(rng, lat=lat, lng=lng, radius_m=radius))
        )
        if k % 3 == 0:
            # Long east-west edges far from the equator: the arcs bow poleward by metres.
            half = rng.uniform(0.2, 0.5)
            zones.append(
                factories.zone(
                    merchant=factories.merchant(lat=lat, lng=lng),
                    area=factories.square(lat=lat, lng=lng, half_side_deg=half / 4),
                )
            )
    # Across the antimeridian: as geography a small square, as flat degrees a strip
    # around the globe. The services refuse it; a bulk load or raw SQL still writes one.
    zones.append(
        DeliveryZone.objects.create(
            merchant=factories.merchant(lat=-16.5, lng=179.95),
            name="Across",
            area=polygon([(179.9, -16.6), (-179.9, -16.6), (-179.9, -16.4), (179.9, -16.4)]),
            delivery_fee=Decimal("2.50"),
        )
    )
    # At 70° north with 1.5° long edges: about 60 m between arc and chord.
    zones.append(
        factories.zone(
            merchant=factories.merchant(lat=70.05, lng=20.75),
            area=polygon([(20.0, 70.0), (21.5, 70.0), (21.5, 70.1), (20.0, 70.1)]),
        )
    )
    zone_ids = [zone.pk for zone in zones]
    assert DeliveryZoneCell.objects.filter(zone_id__in=zone_ids, covered=True).exists()
    assert DeliveryZoneCell.objects.filter(zone_id__in=zone_ids, core__isnull=False).exists()

    points = arc_points(zone_ids)
    for zone in zones:
        points += near_boundary(rng, zone, 25)
    points += [(-16.5, 180.0), (-16.5, -179.95), (-16.5, 179.95), (-16.5, 0.0), (-16.5, 170.0)]
    assert_same_as_st_covers(points, zones)
    # The points between arc and chord are not all on one side: some are answered by
    # the arc alone.
    reference = st_covers(points, zone_ids)
    assert 0 < len(reference) < len(points)


def test_boundary_points_count_as_covered():
    shop = factories.merchant(lat=52.52, lng=13.405)
    ring = [(13.40, 52.51), (13.41, 52.51), (13.41, 52.53), (13.40, 52.53)]
    zone = factories.zone(merchant=shop, area=polygon(ring))
    vertex = (52.51, 13.40)
    on_meridian_edge = (52.52, 13.41)  # on the boundary as arc and as line alike
    just_outside = (52.52, 13.41 + 1e-7)
    just_inside = (52.52, 13.41 - 1e-7)
    assert delivering(*vertex) == {shop.pk: zone.pk}
    assert delivering(*on_meridian_edge) == {shop.pk: zone.pk}
    assert delivering(*just_inside) == {shop.pk: zone.pk}
    assert delivering(*just_outside) == {}
    assert_same_as_st_covers([vertex, on_meridian_edge, just_outside, just_inside], [zone])


def cells_of(zone_id: int) -> list[tuple]:
    return list(
        DeliveryZoneCell.objects.filter(zone_id=zone_id)
        .order_by("id")
        .values_list("id", "merchant_id", "delivery_fee", "min_order_amount")
    )


def test_zone_writes_keep_the_cells_in_step():
    shop = factories.merchant(lat=52.52, lng=13.405)
    zone = factories.zone(merchant=shop, fee="2.50")
    zone_id = zone.pk
    here, there = (52.52, 13.405), (52.62, 13.405)
    first = cells_of(zone_id)
    assert first
    assert {row[1:] for row in first} == {(shop.pk, Decimal("2.50"), Decimal("10.00"))}
    assert delivering(*here) == {shop.pk: zone.pk}

    delivery_zone_update(zone=zone, data={"name": "Renamed"})
    assert cells_of(zone_id) == first  # a rename cuts nothing again

    delivery_zone_update(zone=zone, data={"delivery_fee": Decimal("3.00")})
    assert {row[2] for row in cells_of(zone_id)} == {Decimal("3.00")}
    assert answered(*here, limit=5)[0]["delivery_fee"] == "3.00"

    delivery_zone_update(zone=zone, data={"area": factories.square(lat=there[0], lng=there[1])})
    assert delivering(*here) == {}
    assert delivering(*there) == {shop.pk: zone.pk}

    delivery_zone_update(zone=zone, data={"is_active": False})
    assert cells_of(zone_id) == []
    assert delivering(*there) == {}
    delivery_zone_update(zone=zone, data={"is_active": True})
    assert delivering(*there) == {shop.pk: zone.pk}

    delivery_zone_delete(zone=zone)
    assert cells_of(zone_id) == []
    assert delivering(*there) == {}


def test_zones_written_without_the_services_get_cells():
    """Bulk loads (the demo seed's COPY, `bulk_create`) and raw SQL go through the same
    triggers."""
    shop = factories.merchant(lat=52.52, lng=13.405)
    zones = DeliveryZone.objects.bulk_create(
        [
            DeliveryZone(
                merchant=shop,
                name=f"Bulk {k}",
                area=factories.square(lat=52.52, lng=13.405, half_side_deg=0.01 * (k + 1)),
                delivery_fee=Decimal(fee),
            )
            for k, fee in enumerate(["4.00", "1.00"])
        ]
    )
    assert all(cells_of(zone.pk) for zone in zones)
    assert delivering(52.52, 13.405) == {shop.pk: zones[1].pk}  # the cheaper one
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM merchants_deliveryzone WHERE id = %s", [zones[1].pk])
    assert cells_of(zones[1].pk) == []
    assert delivering(52.52, 13.405) == {shop.pk: zones[0].pk}


def nearest_first(lat: float, lng: float) -> list[tuple[int, int]]:
    """Delivering-to's merchant ids with their rounded distances, in its order."""
    return [(row["id"], round(row["distance_m"])) for row in answered(lat, lng)]


def test_merchant_writes_keep_the_cells_in_step():
    """The cells carry their merchant's location and active flag: deactivating or moving
    a merchant, by the services or raw SQL, changes what delivering-to answers."""
    here = (52.52, 13.405)
    near = factories.merchant(lat=52.52, lng=13.405)
    far = factories.merchant(lat=52.53, lng=13.405)
    for shop in (near, far):
        factories.zone(merchant=shop, area=factories.square(lat=52.52, lng=13.405))
    assert nearest_first(*here) == [(near.pk, 0), (far.pk, 1113)]

    merchant_update(merchant=near, data={"is_active": False})
    assert nearest_first(*here) == [(far.pk, 1113)]
    merchant_update(merchant=near, data={"is_active": True})
    assert nearest_first(*here) == [(near.pk, 0), (far.pk, 1113)]

    # Its zone stays where it was, and still covers the point.
    merchant_update(merchant=near, data={"address": {"location": Point(13.405, 52.55)}})
    assert nearest_first(*here) == [(far.pk, 1113), (near.pk, 3338)]

    with connection.cursor() as cursor:
        cursor.execute("UPDATE merchants_merchant SET is_active = false WHERE id = %s", [far.pk])
        assert nearest_first(*here) == [(near.pk, 3338)]
        cursor.execute("UPDATE merchants_merchant SET is_active = true WHERE id = %s", [far.pk])
        cursor.execute(
            "UPDATE merchants_address SET location = 'SRID=4326;POINT(13.405 52.521)' "
            "WHERE id = %s",
            [far.address_id],
        )
    assert nearest_first(*here) == [(far.pk, 111), (near.pk, 3338)]
    assert sorted(
        DeliveryZoneCell.objects.values_list("merchant_id", "merchant_is_active").distinct()
    ) == sorted([(near.pk, True), (far.pk, True)])


def test_cells_of_a_new_zone_take_the_merchant_as_it_is():
    shop = factories.merchant(lat=52.52, lng=13.405, is_active=False)
    factories.zone(merchant=shop, area=factories.square(lat=52.52, lng=13.405))
    assert delivering(52.52, 13.405) == {}
    merchant_update(merchant=shop, data={"is_active": True})
    zone = factories.zone(merchant=shop, area=factories.square(lat=52.6, lng=13.405), fee="1.00")
    assert delivering(52.6, 13.405) == {shop.pk: zone.pk}


def test_limit_keeps_the_nearest_covering_merchants():
    """The walk stops after `limit` merchants: those nearest by sphere distance (`<->`,
    ties by id), each with its cheapest covering zone, as when every covering merchant
    is ranked."""
    rng = random.Random(3)
    here = (52.52, 13.405)
    shops = [
        factories.merchant(
            lat=here[0] + rng.uniform(-0.02, 0.02), lng=here[1] + rng.uniform(-0.03, 0.03)
        )
        for _ in range(24)
    ]
    twin = factories.merchant(lat=shops[0].location.y, lng=shops[0].location.x)
    for shop in [*shops, twin]:
        factories.zone(merchant=shop, area=factories.square(lat=here[0], lng=here[1]), fee="3.00")
    cheaper = {
        shop.pk: factories.zone(
            merchant=shop,
            area=factories.square(lat=here[0], lng=here[1], half_side_deg=0.01),
            fee="1.00",
        ).pk
        for shop in shops[::3]
    }
    elsewhere = factories.merchant(lat=here[0], lng=here[1] + 0.001)
    factories.zone(merchant=elsewhere, area=factories.square(lat=52.7, lng=13.405))
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM merchants_merchant WHERE id <> %s "
            "ORDER BY location <-> 'SRID=4326;POINT(13.405 52.52)'::geography, id",
            [elsewhere.pk],
        )
        by_sphere = [row[0] for row in cursor.fetchall()]
    for limit in (1, 2, 5, 9, 24, 25, 40):
        rows = answered(*here, limit=limit)
        assert {row["id"] for row in rows} == set(by_sphere[:limit]), limit
        assert [row["distance_m"] for row in rows] == sorted(row["distance_m"] for row in rows)
        for row in rows:
            assert row["zone_id"] == cheaper.get(row["id"], row["zone_id"])
            assert row["delivery_fee"] == ("1.00" if row["id"] in cheaper else "3.00")


@pytest.mark.parametrize(("lat", "lng"), [("0.0005", "5e-324"), ("5e-324", "-5e-324"), ("0", "0")])
def test_delivering_to_takes_the_tiniest_coordinates(lat, lng):
    """A coordinate the parameters accept, as small as a float goes, is a point near 0°:
    the walk's unit vector must not underflow into an error."""
    shop = factories.merchant(lat=0.001, lng=0.001)
    factories.zone(merchant=shop)
    response = APIClient().get("/api/v1/merchants/delivering-to/", {"lat": lat, "lng": lng})
    assert response.status_code == 200, response.content
    assert [row["id"] for row in response.json()["results"]] == [shop.pk]


def test_the_unit_vector_is_inlined_by_the_planner():
    """Delivering-to's point's unit vector is folded when the statement is planned: a
    function the planner cannot inline runs its body through the SQL function executor
    there (migration 0015)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "EXPLAIN VERBOSE SELECT merchants_unit_vector(location) FROM merchants_merchant"
        )
        text = "\n".join(row[0] for row in cursor.fetchall())
    assert "st_makepoint" in text, text
    assert "merchants_unit_vector" not in text, text


def test_the_unit_vector_is_the_one_stored_cells_were_given():
    """The inlinable function (0015) gives what 0008's gave, bit for bit, so the stored
    `merchant_unit` of every cell stays valid: random points, the poles, the antimeridian
    and the tiniest coordinates."""
    migration = importlib.import_module("merchants.migrations.0015_unit_vector_inlined")
    earlier = migration.BACKWARD.replace(
        "OR REPLACE FUNCTION merchants_unit_vector", "FUNCTION pg_temp.unit_vector_0008"
    )
    rng = random.Random(15)
    points = [(rng.uniform(-90, 90), rng.uniform(-180, 180)) for _ in range(500)]
    points += [(90.0, 0.0), (-90.0, 0.0), (0.0, 180.0), (0.0, -180.0), (5e-324, -5e-324)]
    points += [(1e-300, 0.0), (0.0, 1e-301)]
    with connection.cursor() as cursor:
        cursor.execute(earlier)
        cursor.execute(
            """
            SELECT count(*) FILTER (WHERE ST_AsEWKB(merchants_unit_vector(g))
                                          = ST_AsEWKB(pg_temp.unit_vector_0008(g))),
                   count(*)
            FROM unnest(%s::float8[], %s::float8[]) AS p(lat, lng),
                 LATERAL (SELECT ST_SetSRID(ST_MakePoint(lng, lat), 4326)::geography AS g) q
            """,
            [[lat for lat, _ in points], [lng for _, lng in points]],
        )
        same, total = cursor.fetchone()
    assert same == total == len(points)
