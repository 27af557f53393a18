"""The zones tile layer reads each active zone's outline from a table of its own, kept by
triggers (migration 0021), and up to `ZONES_DRAWN_MAX_ZOOM` those outlines clipped to
each tile ahead (migration 0022): on every write path they must equal the active zones."""

from decimal import Decimal
from importlib import import_module

import pytest
from django.db import connection

from merchants.models import DeliveryZone
from merchants.services import (
    delivery_zone_create,
    delivery_zone_delete,
    delivery_zone_update,
    merchant_delete,
)
from merchants.tiles import BUFFER, EXTENT, ZONES_DRAWN_MAX_ZOOM
from tests import factories

pytestmark = pytest.mark.django_db

_0021 = import_module("merchants.migrations.0021_zone_tile_outlines")
_0022 = import_module("merchants.migrations.0022_zone_tile_pieces")

MUNICH = (48.137, 11.575)
STORED_SQL = f"SELECT zone_id, merchant_id, delivery_fee, ST_AsEWKB(outline) FROM {_0021.TABLE}"  # noqa: S608


def stored() -> set[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(STORED_SQL)
        return {(row[0], row[1], row[2], bytes(row[3])) for row in cursor.fetchall()}


def expected() -> set[tuple]:
    """Every active zone as the tile draws it: its area in Web Mercator, its fee as the
    decimal string."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, merchant_id, delivery_fee::text,"
            " ST_AsEWKB(ST_Transform(area::geometry, 3857))"
            " FROM merchants_deliveryzone WHERE is_active"
        )
        return {(row[0], row[1], row[2], bytes(row[3])) for row in cursor.fetchall()}


PIECES_SQL = f"""
    SELECT z, x, y, zone_id, merchant_id, delivery_fee, ST_AsEWKB(geom) FROM {_0022.TABLE}"""  # noqa: S608

# Every tile up to the drawn zoom that the tile's own test (`outline && envelope with its
# margin`) finds an outline in, and what ST_AsMVTGeom draws of it there. The tiles are
# looked for two beyond the outline's box on each side.
DRAWN_SQL = f"""
    SELECT z, x, y, zone_id, merchant_id, delivery_fee, ST_AsEWKB(geom) FROM (
        SELECT z, x, y, o.zone_id, o.merchant_id, o.delivery_fee,
               ST_AsMVTGeom(o.outline, ST_TileEnvelope(z, x, y), {EXTENT}, {BUFFER}, true) AS geom
        FROM {_0021.TABLE} o
        CROSS JOIN generate_series(0, {ZONES_DRAWN_MAX_ZOOM}) AS z
        CROSS JOIN LATERAL (SELECT 40075016.685578488 / 2 ^ z AS side, 2 ^ z - 1 AS last) g
        CROSS JOIN LATERAL generate_series(
            greatest(0, floor((ST_XMin(o.outline) + 20037508.342789244) / g.side) - 2)::int,
            least(g.last, floor((ST_XMax(o.outline) + 20037508.342789244) / g.side) + 2)::int
        ) AS x
        CROSS JOIN LATERAL generate_series(
            greatest(0, floor((20037508.342789244 - ST_YMax(o.outline)) / g.side) - 2)::int,
            least(g.last, floor((20037508.342789244 - ST_YMin(o.outline)) / g.side) + 2)::int
        ) AS y
        WHERE o.outline && ST_TileEnvelope(z, x, y, margin => {BUFFER / EXTENT})
    ) drawn
    WHERE geom IS NOT NULL"""  # noqa: S608


def rows_of(sql: str) -> set[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return {(*row[:-1], bytes(row[-1])) for row in cursor.fetchall()}


def assert_outlines_are_the_active_zones() -> None:
    """And the pieces are the outlines as each tile draws them."""
    assert stored() == expected()
    pieces = rows_of(PIECES_SQL)
    assert pieces == rows_of(DRAWN_SQL)
    # Each zone (a few km wide) drawn at every zoom from 10 (at lower ones ST_AsMVTGeom
    # may find it smaller than the grid).
    assert {(row[3], row[0]) for row in pieces if row[0] >= 10} == {
        (zone_id, z) for zone_id, *_ in stored() for z in range(10, ZONES_DRAWN_MAX_ZOOM + 1)
    }


@pytest.fixture
def shop():
    return factories.merchant(name="Corner shop", lat=52.52, lng=13.405)


@pytest.fixture
def zones(shop):
    return [
        factories.zone(merchant=shop, fee="2.50"),
        factories.zone(merchant=shop, fee="4.00", area=factories.square(lat=52.53, lng=13.41)),
        factories.zone(merchant=shop, fee="9.00", is_active=False),
    ]


def test_created_zones_are_stored_when_active(shop):
    made = [
        delivery_zone_create(
            merchant=shop,
            name=name,
            area=factories.square(lat=52.52, lng=13.405),
            delivery_fee=Decimal("1.25"),
            is_active=active,
        )
        for name, active in (("Open", True), ("Not yet", False))
    ]
    assert {row[0] for row in stored()} == {made[0].pk}
    assert_outlines_are_the_active_zones()


@pytest.mark.parametrize(
    "data",
    [
        {"delivery_fee": Decimal("3.75")},
        {"area": factories.square(lat=MUNICH[0], lng=MUNICH[1])},
        {"is_active": False},
    ],
    ids=["fee", "area", "deactivated"],
)
def test_a_zone_updated_by_the_service(zones, data):
    delivery_zone_update(zone=zones[0], data=data)
    assert_outlines_are_the_active_zones()


def test_a_zone_activated_is_stored(zones):
    delivery_zone_update(zone=zones[2], data={"is_active": True})
    assert zones[2].pk in {row[0] for row in stored()}
    assert_outlines_are_the_active_zones()


def test_a_zone_moved_to_another_merchant(zones):
    other = factories.merchant(name="Other", lat=52.5, lng=13.4)
    DeliveryZone.objects.filter(pk=zones[0].pk).update(merchant=other)
    assert_outlines_are_the_active_zones()


def test_a_bulk_update_of_many_zones(zones):
    """A data fix: one statement, no model code."""
    DeliveryZone.objects.update(delivery_fee=Decimal("0.99"))
    DeliveryZone.objects.filter(pk=zones[1].pk).update(
        area=factories.square(lat=MUNICH[0], lng=MUNICH[1]), is_active=False
    )
    assert_outlines_are_the_active_zones()


def test_a_renamed_zone_is_not_written_again(zones):
    """Only the columns the tile draws redraw a zone; its row stays as it was."""

    def row_version() -> str:
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT ctid::text FROM {_0021.TABLE} WHERE zone_id = %s",  # noqa: S608
                [zones[0].pk],
            )
            return cursor.fetchone()[0]

    before = row_version()
    delivery_zone_update(zone=zones[0], data={"name": "Renamed"})
    assert row_version() == before
    assert_outlines_are_the_active_zones()


def test_a_zone_whose_id_changes(zones):
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE merchants_deliveryzone SET id = id + 1000000 WHERE id = %s", [zones[0].pk]
        )
    assert zones[0].pk not in {row[0] for row in stored()}
    assert_outlines_are_the_active_zones()


def test_zones_bulk_created(shop):
    DeliveryZone.objects.bulk_create(
        [
            DeliveryZone(
                merchant=shop,
                name=f"Zone {index}",
                area=factories.square(lat=52.52 + index / 100, lng=13.405),
                delivery_fee=Decimal(f"{index}.50"),
                is_active=index != 2,
            )
            for index in range(4)
        ]
    )
    assert len(stored()) == 3
    assert_outlines_are_the_active_zones()


def test_zones_copied_in(shop):
    """A load with COPY, as the demo seed writes zones."""
    area = factories.square(lat=52.52, lng=13.405)
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(
            "COPY merchants_deliveryzone"
            " (merchant_id, name, area, delivery_fee, min_order_amount, is_active) FROM STDIN"
        ) as copy,
    ):
        for index in range(3):
            copy.write_row((shop.pk, f"Z{index}", area.ewkt, "1.00", "0", index != 1))
    assert len(stored()) == 2
    assert_outlines_are_the_active_zones()


@pytest.mark.parametrize(
    "remove",
    [
        lambda zones: delivery_zone_delete(zone=zones[0]),
        lambda zones: DeliveryZone.objects.filter(pk__in=[z.pk for z in zones[:2]]).delete(),
        lambda zones: merchant_delete(merchant=zones[0].merchant),
    ],
    ids=["service", "queryset-delete", "merchant-deleted"],
)
def test_deleted_zones_are_removed(zones, remove):
    remove(zones)
    assert_outlines_are_the_active_zones()


@pytest.mark.django_db(transaction=True)
def test_truncating_the_zones_empties_the_outlines(zones):
    """As a test database's flush does, committed: within the transaction that wrote
    them, the zones' deferred foreign key checks would refuse the TRUNCATE."""
    assert stored()
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE merchants_deliveryzone CASCADE")
    assert stored() == set()
    assert rows_of(PIECES_SQL) == set()


def test_the_migration_fills_the_outlines_of_existing_zones(zones):
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {_0021.TABLE}")
        cursor.execute(_0021.OUTLINES_OF.format(zones="merchants_deliveryzone", only=""))
    assert_outlines_are_the_active_zones()


def test_the_migration_draws_the_pieces_of_existing_outlines(zones):
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {_0022.TABLE}")
        cursor.execute(_0022.PIECES_OF.format(outlines=_0021.TABLE))
    assert_outlines_are_the_active_zones()


def test_a_zone_across_many_tiles_has_a_piece_in_each(shop):
    """A zone some 14 by 22 km, about 10 by 15 tiles at z14: the pieces of a zone are
    found by arithmetic on its box, checked here against the tiles' own test."""
    zone = factories.zone(
        merchant=shop, area=factories.square(lat=52.52, lng=13.405, half_side_deg=0.1)
    )
    assert_outlines_are_the_active_zones()
    pieces = [row for row in rows_of(PIECES_SQL) if row[3] == zone.pk and row[0] == 14]
    assert len(pieces) >= 100
