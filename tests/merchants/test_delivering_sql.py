"""Delivering-to's answer from SQL kept in the database (merchants/delivering_sql.py): each
merchant's stored `shown_json` follows every write of what it shows, however written, and
the answer shows each merchant as merchants/nearby (rendered in Python) does."""

import json
from datetime import UTC, datetime

import pytest
from django.contrib.gis.geos import Point
from django.db import connection

from geomarket.api.responses import json_bytes
from geomarket.shapes import Shape, installed_function_body
from merchants import delivering_sql, shapes
from merchants.models import Merchant
from merchants.selectors import DELIVERING_TO_PLAN, merchants_delivering_to, merchants_nearby
from merchants.serializers import merchant_row
from merchants.services import address_update, merchant_hours_replace, merchant_update
from tests import factories

pytestmark = pytest.mark.django_db

HERE = {"lat": 52.52, "lng": 13.405}
ZONE_FIELDS = ("zone_id", "delivery_fee", "min_order_amount")


def _sql(statement: str, params=None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def shown_as_nearby_shows(merchant_id: int) -> tuple[dict, dict]:
    """The merchant as delivering-to shows it, but its zone's fields, and as
    merchants/nearby does."""
    body, _ = merchants_delivering_to(**HERE, limit=100)
    (delivering,) = (row for row in json.loads(body)["results"] if row["id"] == merchant_id)
    rows = merchants_nearby(**HERE, radius_m=5000, limit=100)
    (nearby,) = (merchant_row(row) for row in rows if row["id"] == merchant_id)
    return (
        {key: value for key, value in delivering.items() if key not in ZONE_FIELDS},
        json.loads(json_bytes(nearby)),
    )


@pytest.fixture
def shop():
    merchant = factories.merchant(lat=52.5201, lng=13.4051, categories=[factories.category()])
    factories.zone(merchant=merchant)
    return merchant


def _other_address(shop) -> None:
    other = factories.merchant(lat=52.6, lng=13.6)
    _sql("UPDATE merchants_merchant SET address_id = %s WHERE id = %s", [other.address_id, shop.pk])
    _sql(
        "UPDATE merchants_address SET location = %s WHERE id = %s",
        [
            "SRID=4326;POINT(13.4052 52.5202)",
            other.address_id,
        ],
    )


def _truncate_categories(shop) -> None:
    # The test's transaction holds deferred key checks, which TRUNCATE will not leave.
    _sql("SET CONSTRAINTS ALL IMMEDIATE")
    _sql("TRUNCATE merchants_merchant_categories")


# Each write changes something the answer shows of the merchant, without the trigger on
# its own row seeing it unless the write reaches that row.
WRITES = {
    "service update": lambda shop: merchant_update(
        merchant=shop, data={"name": 'New "name" \u2028', "phone": "+49 1", "description": "d"}
    ),
    "bulk update": lambda shop: Merchant.objects.filter(pk=shop.pk).update(
        is_active=True, created_at=datetime(2026, 1, 2, 3, 4, 5, 600, tzinfo=UTC)
    ),
    "raw update": lambda shop: _sql(
        "UPDATE merchants_merchant SET owner_id = %s, timezone = 'Asia/Tokyo' WHERE id = %s",
        [factories.user().pk, shop.pk],
    ),
    "hours": lambda shop: merchant_hours_replace(
        merchant=shop, timezone="America/New_York", weekly=[]
    ),
    "address service": lambda shop: address_update(
        address=shop.address, data={"line1": "Unter den Linden 5", "line2": "Hof"}
    ),
    "address raw": lambda shop: _sql(
        "UPDATE merchants_address SET city = 'Potsdam', postal_code = '14467', country = 'DE'"
        " WHERE id = %s",
        [shop.address_id],
    ),
    "address point": lambda shop: address_update(
        address=shop.address, data={"location": Point(13.4052, 52.5202, srid=4326)}
    ),
    "another address": _other_address,
    "categories added": lambda shop: shop.categories.add(factories.category()),
    "categories set": lambda shop: merchant_update(
        merchant=shop, data={"categories": [factories.category(), factories.category()]}
    ),
    "categories cleared": lambda shop: shop.categories.clear(),
    "categories raw insert": lambda shop: _sql(
        "INSERT INTO merchants_merchant_categories (merchant_id, productcategory_id)"
        " VALUES (%s, %s)",
        [shop.pk, factories.category().pk],
    ),
    "categories raw update": lambda shop: _sql(
        "UPDATE merchants_merchant_categories SET productcategory_id = %s WHERE merchant_id = %s",
        [factories.category().pk, shop.pk],
    ),
    "categories truncated": _truncate_categories,
}


@pytest.mark.parametrize("write", list(WRITES))
def test_each_write_of_what_the_answer_shows_reaches_it(shop, write):
    before, _ = shown_as_nearby_shows(shop.pk)
    WRITES[write](shop)
    delivering, nearby = shown_as_nearby_shows(shop.pk)
    assert delivering != before
    assert delivering == nearby


def test_a_new_merchant_is_shown_as_merchants_nearby_shows_it(shop):
    delivering, nearby = shown_as_nearby_shows(shop.pk)
    assert delivering == nearby
    assert delivering["category_ids"] == [category.pk for category in shop.categories.all()]


def test_the_installed_functions_are_the_ones_the_code_gives():
    with connection.cursor() as cursor:
        trigger, trigger_body, _ = delivering_sql.trigger_function()
        assert installed_function_body(cursor, trigger) == trigger_body
        assert installed_function_body(cursor, DELIVERING_TO_PLAN.name) == DELIVERING_TO_PLAN.body
    assert delivering_sql.sync() is False


def test_a_changed_shape_replaces_the_trigger_and_renders_every_merchant_again(shop, monkeypatch):
    narrower = Shape("MerchantShown", shapes.MERCHANT_SHOWN.fields[:3])
    monkeypatch.setattr(delivering_sql, "MERCHANT_SHOWN", narrower)
    assert delivering_sql.sync() is True
    shop.refresh_from_db()
    with connection.cursor() as cursor:
        cursor.execute("SELECT shown_json FROM merchants_merchant WHERE id = %s", [shop.pk])
        assert cursor.fetchone()[0] == (
            f'{{"id":{shop.pk},"owner_id":{shop.owner_id},"name":{json.dumps(shop.name)}'
        )
    assert delivering_sql.sync() is False


def test_the_answer_is_the_same_sent_with_its_values_written_in_or_prepared(shop):
    """The function's call as Django's cursors send it (its values in its text) and as a
    prepared statement, run again and again (the function's plan kept after its first
    run)."""
    now = datetime.now(UTC)
    params = {
        "point": "SRID=4326;POINT(13.405 52.52)",
        "limit": 5,
        "now": now,
        "open_at": now,
        "prep_time_default_s": 600,
    }
    sql = DELIVERING_TO_PLAN.call()
    answers = set()
    for cursor in (connection.cursor(), connection.prepared_cursor()):
        with cursor:
            for _ in range(3):
                cursor.execute(sql, params)
                answers.add(cursor.fetchone())
    ((body, changes_at),) = answers
    assert [row["id"] for row in json.loads(body)["results"]] == [shop.pk]
    assert changes_at is None or changes_at > now.timestamp()
