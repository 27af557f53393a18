"""Zone coverage from grid cells (`merchants.models.DeliveryZoneCell`, migration 0020):
the cells follow every write of the zones and of their merchants, however written, and
the coverage they answer is `ST_Covers` on the zone's geography, on the grid's lines and
corners too."""

import itertools
import json
import random
from decimal import Decimal
from importlib import import_module

import pytest
from django.contrib.gis.geos import MultiPolygon, Point, Polygon
from django.db import connection

from merchants.models import DeliveryZone, Merchant
from merchants.selectors import POINT_CELL_SQL, merchants_delivering_to
from merchants.services import (
    address_update,
    delivery_zone_create,
    delivery_zone_delete,
    delivery_zone_update,
    merchant_update,
)
from tests import factories
from tests.admin_forms import submit
from tests.geo_fixtures import st_covers, star
from tests.search import test_admin_writes

pytestmark = pytest.mark.django_db

MIGRATION = import_module("merchants.migrations.0020_delivering_cells")
SIDE = 1 / MIGRATION.CELLS_PER_DEGREE
HERE = (52.52, 13.405)


def _sql(statement: str, params=None) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall() if cursor.description else []


# The rows as they are, and as the zones and merchants give them now.
_STORED = """
SELECT zone_id, merchant_id, delivery_fee, min_order_amount,
       ST_AsBinary(merchant_location), merchant_is_active, ST_AsEWKB(merchant_unit),
       cell, covered, ST_AsEWKB(core), ST_AsEWKB(hull)
FROM merchants_deliveryzonecell
"""
_EXPECTED = """
SELECT z.id, z.merchant_id, z.delivery_fee, z.min_order_amount,
       ST_AsBinary(m.location), m.is_active, ST_AsEWKB(merchants_unit_vector(m.location)),
       c.cell, c.covered, ST_AsEWKB(c.core), ST_AsEWKB(c.hull)
FROM merchants_deliveryzone z
JOIN merchants_merchant m ON m.id = z.merchant_id
CROSS JOIN LATERAL merchants_zone_cells(z.area) c
WHERE z.is_active
"""


def assert_cells_follow_zones() -> None:
    stored = sorted(_sql(_STORED), key=repr)
    assert stored == sorted(_sql(_EXPECTED), key=repr)


def polygon(ring) -> MultiPolygon:
    return MultiPolygon(Polygon([*ring, ring[0]], srid=4326), srid=4326)


def delivering(lat: float, lng: float) -> dict[int, int]:
    body, _ = merchants_delivering_to(lat=lat, lng=lng, limit=500)
    return {row["id"]: row["zone_id"] for row in json.loads(body)["results"]}


@pytest.fixture
def shops():
    """Two merchants with a zone each, one with a second, dearer one."""
    first = factories.merchant(lat=HERE[0], lng=HERE[1])
    second = factories.merchant(lat=HERE[0] + 0.01, lng=HERE[1])
    factories.zone(
        merchant=first, area=star(random.Random(1), lat=HERE[0], lng=HERE[1], radius_m=4000)
    )
    factories.zone(merchant=first, fee="4.00", area=factories.square(lat=HERE[0], lng=HERE[1]))
    factories.zone(merchant=second, area=factories.square(lat=HERE[0] + 0.01, lng=HERE[1]))
    assert_cells_follow_zones()
    return first, second


def _zone(shops) -> DeliveryZone:
    return DeliveryZone.objects.filter(merchant=shops[0]).order_by("id").first()


def _bulk_create(shops):
    DeliveryZone.objects.bulk_create(
        [
            DeliveryZone(
                merchant=shops[1],
                name=f"Bulk {k}",
                area=factories.square(lat=HERE[0], lng=HERE[1], half_side_deg=0.01 * (k + 1)),
                delivery_fee=Decimal("1.00"),
            )
            for k in range(2)
        ]
    )


def _copy_zones(rows) -> None:
    """Zones written in one COPY, each row `merchant_id, name, area (EWKT), delivery_fee,
    min_order_amount, is_active`."""
    with (
        connection.cursor() as cursor,
        cursor.copy(
            "COPY merchants_deliveryzone (merchant_id, name, area, delivery_fee, min_order_amount,"
            " is_active) FROM STDIN"
        ) as copy,
    ):
        for row in rows:
            copy.write_row(row)


def _copy(shops):
    _copy_zones(
        [
            shops[1].pk,
            f"Copied {k}",
            factories.square(lat=HERE[0] + 0.005 * k, lng=HERE[1], half_side_deg=0.03).ewkt,
            "1.50",
            "0",
            k != 1,
        ]
        for k in range(3)
    )


def _truncate(table: str):
    def write(shops):
        # The test's transaction holds deferred key checks, which TRUNCATE will not leave.
        _sql("SET CONSTRAINTS ALL IMMEDIATE")
        _sql(f"TRUNCATE {table} CASCADE")

    return write


def _other_address(shops):
    _sql(
        "UPDATE merchants_merchant SET address_id = %s WHERE id = %s",
        [shops[1].address_id, shops[0].pk],
    )


ZONE_WRITES = {
    "service create": lambda shops: delivery_zone_create(
        merchant=shops[1],
        name="New",
        area=star(random.Random(2), lat=HERE[0], lng=HERE[1] + 0.02, radius_m=6000),
        delivery_fee=Decimal("0.99"),
    ),
    "service area": lambda shops: delivery_zone_update(
        zone=_zone(shops), data={"area": factories.square(lat=HERE[0] + 0.1, lng=HERE[1])}
    ),
    "service fee": lambda shops: delivery_zone_update(
        zone=_zone(shops), data={"delivery_fee": Decimal("0.50")}
    ),
    "service deactivate": lambda shops: delivery_zone_update(
        zone=_zone(shops), data={"is_active": False}
    ),
    "service other merchant": lambda shops: delivery_zone_update(
        zone=_zone(shops), data={"merchant": shops[1]}
    ),
    "service delete": lambda shops: delivery_zone_delete(zone=_zone(shops)),
    "bulk create": _bulk_create,
    "bulk update": lambda shops: DeliveryZone.objects.filter(merchant=shops[0]).update(
        min_order_amount=Decimal("33.00"), area=factories.square(lat=HERE[0], lng=HERE[1] + 0.05)
    ),
    "bulk delete": lambda shops: DeliveryZone.objects.filter(merchant=shops[0]).delete(),
    "raw insert": lambda shops: _sql(
        "INSERT INTO merchants_deliveryzone"
        " (merchant_id, name, area, delivery_fee, min_order_amount, is_active)"
        " SELECT merchant_id, 'Raw', ST_Multi(ST_Buffer(area, 500)::geometry)::geography,"
        " 3.00, 0, true FROM merchants_deliveryzone",
    ),
    "raw update": lambda shops: _sql(
        "UPDATE merchants_deliveryzone SET is_active = NOT is_active, delivery_fee = 7"
    ),
    "raw id change": lambda shops: _sql(
        "UPDATE merchants_deliveryzone SET id = id + 1000000 WHERE merchant_id = %s",
        [shops[0].pk],
    ),
    "raw delete": lambda shops: _sql(
        "DELETE FROM merchants_deliveryzone WHERE merchant_id = %s", [shops[1].pk]
    ),
    "copy": _copy,
    "truncate zones": _truncate("merchants_deliveryzone"),
    "truncate merchants": _truncate("merchants_merchant"),
    "merchant service": lambda shops: merchant_update(merchant=shops[0], data={"is_active": False}),
    "merchant moved": lambda shops: merchant_update(
        merchant=shops[0], data={"address": {"location": Point(13.5, 52.6, srid=4326)}}
    ),
    "address service": lambda shops: address_update(
        address=shops[1].address, data={"location": Point(13.41, 52.51, srid=4326)}
    ),
    "merchant raw": lambda shops: _sql("UPDATE merchants_merchant SET is_active = false"),
    "merchant bulk": lambda shops: Merchant.objects.filter(pk=shops[1].pk).update(is_active=False),
    "another address": _other_address,
}


@pytest.mark.parametrize("write", list(ZONE_WRITES))
def test_each_write_path_keeps_the_cells_equal_to_the_zones(shops, write):
    before = _sql(_STORED)
    ZONE_WRITES[write](shops)
    assert _sql(_STORED) != before
    assert_cells_follow_zones()


def test_a_rename_cuts_nothing_again(shops):
    zone = _zone(shops)
    before = _sql("SELECT id FROM merchants_deliveryzonecell ORDER BY id")
    delivery_zone_update(zone=zone, data={"name": "Renamed"})
    assert _sql("SELECT id FROM merchants_deliveryzonecell ORDER BY id") == before


# A signed-in superuser's client, as the admin's other tests have it.
operator = test_admin_writes.operator


def test_admin_writes_keep_the_cells_equal_to_the_zones(operator, shops):
    zone = _zone(shops)
    url = f"/admin/merchants/deliveryzone/{zone.pk}/change/"
    moved = factories.square(lat=HERE[0] - 0.05, lng=HERE[1], half_side_deg=0.04)
    response = submit(operator, url, "deliveryzone_form", {"area": moved.ewkt})
    assert response.status_code == 302
    assert_cells_follow_zones()
    assert delivering(HERE[0] - 0.05, HERE[1])[shops[0].pk] == zone.pk

    url = f"/admin/merchants/merchant/{shops[1].pk}/change/"
    response = submit(operator, url, "merchant_form", {"delivery_zones-0-DELETE": "on"})
    assert response.status_code == 302
    assert_cells_follow_zones()

    selected = {"action": "delete_selected", "_selected_action": [zone.pk], "post": "yes"}
    assert operator.post("/admin/merchants/deliveryzone/", selected).status_code == 302
    assert_cells_follow_zones()
    assert not DeliveryZone.objects.filter(pk=zone.pk).exists()


def cells_pairs(points) -> set[tuple[int, int]]:
    """The same pairs as the cells answer them, through the one-zone test the orders and
    the deliverable filter use (`_ZONE_COVERS`), for every point."""
    from merchants.selectors import _ZONE_COVERS

    found = set()
    for n, (lat, lng) in enumerate(points):
        point = f"SRID=4326;POINT({lng!r} {lat!r})"
        sql = f"SELECT z.id FROM merchants_deliveryzone z WHERE z.is_active AND {_ZONE_COVERS}"  # noqa: S608
        found |= {(n, zone_id) for (zone_id,) in _sql(sql, {"point": point})}
    return found


def grid_points(rng: random.Random, zone: DeliveryZone, count: int) -> list[tuple[float, float]]:
    """Points of the zone's box exactly on the grid's lines and corners, on its edges where
    they cross the grid's lines, and points a rounding away from the lines."""
    xmin, ymin, xmax, ymax = zone.area.extent
    columns = range(int(xmin / SIDE), int(xmax / SIDE) + 2)
    rows = range(int(ymin / SIDE), int(ymax / SIDE) + 2)
    points = []
    for _ in range(count):
        x, y = rng.choice(columns) * SIDE, rng.choice(rows) * SIDE
        points += [
            (y, x),
            (y, rng.uniform(xmin, xmax)),
            (rng.uniform(ymin, ymax), x),
            (y, x - 1e-12),
            (y - 1e-12, x),
        ]
    ring = zone.area[0][0].coords
    for (x0, y0), (x1, y1) in itertools.pairwise(ring):
        for k in range(int(min(x0, x1) / SIDE), int(max(x0, x1) / SIDE) + 1):
            x = k * SIDE
            if min(x0, x1) < x < max(x0, x1):
                points.append((y0 + (x - x0) * (y1 - y0) / (x1 - x0), x))
    return points


def test_coverage_on_the_grid_lines_is_st_covers():
    """Property: at points on the grid's lines and corners, and where zone edges cross
    them, the cells' answer (the walk and the one-zone test) is plain `ST_Covers`."""
    rng = random.Random(20)
    zones = []
    for _ in range(6):
        lat, lng = rng.uniform(-60, 70), rng.uniform(-170, 170)
        shop = factories.merchant(lat=lat, lng=lng)
        zones.append(
            factories.zone(
                merchant=shop,
                area=star(rng, lat=lat, lng=lng, radius_m=rng.choice([800, 3000, 9000])),
            )
        )
    # A zone whose sides lie on the grid's lines: points of its boundary are on them.
    x0, y0 = 836 * SIDE, 3361 * SIDE
    grid_square = polygon(
        [(x0, y0), (x0 + 3 * SIDE, y0), (x0 + 3 * SIDE, y0 + 2 * SIDE), (x0, y0 + 2 * SIDE)]
    )
    zones.append(factories.zone(merchant=factories.merchant(lat=y0, lng=x0), area=grid_square))
    points = []
    for zone in zones:
        points += grid_points(rng, zone, 40)
    zone_ids = [zone.pk for zone in zones]
    reference = st_covers(points, zone_ids)
    assert 0 < len(reference) < len(points)
    assert cells_pairs(points) == reference
    by_merchant = {zone.merchant_id: zone.pk for zone in zones}
    for n, point in enumerate(points):
        expected = {m: z for m, z in by_merchant.items() if (n, z) in reference}
        assert delivering(*point) == expected, point


def test_a_covered_cell_is_covered_everywhere():
    """A row that says its cell is covered answers without a test: every point of the
    cell, its corners and sides too, is covered by `ST_Covers`."""
    shop = factories.merchant(lat=HERE[0], lng=HERE[1])
    zone = factories.zone(
        merchant=shop, area=star(random.Random(4), lat=HERE[0], lng=HERE[1], radius_m=5000)
    )
    corners = _sql(
        """
        SELECT (lower(cell) / 32768 - 16384) * %(side)s::float8,
               (lower(cell) %% 32768 - 16384) * %(side)s::float8
        FROM merchants_deliveryzonecell WHERE zone_id = %(zone)s AND covered
        """,
        {"side": SIDE, "zone": zone.pk},
    )
    assert len(corners) >= 10
    rng = random.Random(5)
    points = []
    for x, y in corners:
        points += [(y, x), (y + SIDE, x + SIDE), (y, x + SIDE), (y + SIDE, x)]
        points += [(y + rng.random() * SIDE, x + rng.random() * SIDE) for _ in range(5)]
    assert st_covers(points, [zone.pk]) == {(n, zone.pk) for n in range(len(points))}


def test_a_cell_without_a_row_is_not_covered():
    shop = factories.merchant(lat=HERE[0], lng=HERE[1])
    zone = factories.zone(merchant=shop, area=factories.square(lat=HERE[0], lng=HERE[1]))
    rng = random.Random(6)
    points = [
        (HERE[0] + rng.uniform(-0.1, 0.1), HERE[1] + rng.uniform(-0.1, 0.1)) for _ in range(300)
    ]
    cells = {
        row[0]
        for row in _sql(
            "SELECT lower(cell) FROM merchants_deliveryzonecell WHERE zone_id = %s", [zone.pk]
        )
    }
    keys = [
        _sql(f"SELECT {POINT_CELL_SQL}", {"point": f"SRID=4326;POINT({lng!r} {lat!r})"})[0][0]
        for lat, lng in points
    ]
    outside = [n for n, key in enumerate(keys) if key not in cells]
    assert len(outside) > 100
    covered = st_covers(points, [zone.pk])
    assert not {n for n, _ in covered} & set(outside)


@pytest.mark.parametrize(
    "area",
    [
        # Across the antimeridian: as flat degrees a strip around the globe.
        [(179.9, -16.6), (-179.9, -16.6), (-179.9, -16.4), (179.9, -16.4)],
        # More cells than MAX_CELLS (raw SQL takes any size), arcs near their chords.
        [(0.0, -10.0), (1.0, -10.0), (1.0, 10.0), (0.0, 10.0)],
    ],
    ids=["antimeridian", "huge"],
)
def test_a_zone_the_grid_cannot_hold_is_tested_everywhere(area):
    shop = factories.merchant(lat=area[0][1] + 0.05, lng=area[0][0] + 0.05)
    _sql(
        "INSERT INTO merchants_deliveryzone"
        " (merchant_id, name, area, delivery_fee, min_order_amount, is_active)"
        " VALUES (%s, 'Wide', %s, 1, 0, true)",
        [shop.pk, polygon(area).ewkt],
    )
    zone = DeliveryZone.objects.get(merchant=shop)
    assert _sql(
        "SELECT lower_inf(cell) AND upper_inf(cell), covered, core IS NULL AND hull IS NULL"
        " FROM merchants_deliveryzonecell WHERE zone_id = %s",
        [zone.pk],
    ) == [(True, False, True)]
    rng = random.Random(7)
    (x0, y0), (x1, _), (_, y1) = area[0], area[1], area[2]
    points = [(y0, x0), (y1, x1), (y0 - 0.01, x0), (rng.uniform(-20, 40), 179.95)]
    points += [(rng.uniform(y0 - 1, y1 + 1), rng.uniform(-180, 180)) for _ in range(20)]
    reference = st_covers(points, [zone.pk])
    assert reference
    assert cells_pairs(points) == reference
    for n, point in enumerate(points):
        assert delivering(*point) == ({shop.pk: zone.pk} if (n, zone.pk) in reference else {})


def test_the_migrations_fill_gives_what_the_triggers_wrote(shops):
    written = sorted(_sql(_STORED), key=repr)
    _sql("DELETE FROM merchants_deliveryzonecell")
    merchants = MIGRATION.MERCHANTS_OF.format(zones="merchants_deliveryzone")
    cells = MIGRATION.CELLS_OF.format(zones="merchants_deliveryzone", only="")
    _sql(f"WITH {merchants} {cells}")
    assert sorted(_sql(_STORED), key=repr) == written


def test_a_bulk_write_lays_each_cells_rows_side_by_side_nearest_merchants_together():
    """Rows written in one statement (a city's zones in one COPY) go in the order of their
    cell, then of their merchant's geohash: delivering-to's walk reads a cell's nearest
    rows from a few heap pages. Written zone by zone, each row of a cell lay on a page of
    its own, and the walk read a page per row."""
    # Merchants from east to west (geohashes descending), zones overlapping in many cells.
    shops = [factories.merchant(lat=HERE[0], lng=HERE[1] + 0.05 - 0.01 * k) for k in range(4)]
    area = factories.square(lat=HERE[0], lng=HERE[1], half_side_deg=0.04).ewkt
    _copy_zones([shop.pk, "Copied", area, "1.50", "0", True] for shop in shops)
    key = "lower(cell), ST_GeoHash(merchant_location::geometry)"
    # Ids are given in the order rows are written (pages are filled in that order but
    # for a short row that fits in an earlier page's gap).
    written = _sql(f"SELECT {key} FROM merchants_deliveryzonecell ORDER BY id")  # noqa: S608
    assert len({cell for cell, _ in written}) > 1 < len({hash_ for _, hash_ in written})
    assert written == sorted(written)
