"""The zones tile layer reads each active zone's outline from a table of its own, kept by
triggers (migration 0021): on every write path it must equal the active zones."""

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
from tests import factories

pytestmark = pytest.mark.django_db

_0021 = import_module("merchants.migrations.0021_zone_tile_outlines")

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


def assert_outlines_are_the_active_zones() -> None:
    assert stored() == expected()


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


def test_the_migration_fills_the_outlines_of_existing_zones(zones):
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {_0021.TABLE}")
        cursor.execute(_0021.OUTLINES_OF.format(zones="merchants_deliveryzone", only=""))
    assert_outlines_are_the_active_zones()
