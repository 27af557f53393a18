"""Delivering-to's answer is rendered by PostgreSQL from `MERCHANT_DELIVERING`: each of
its kinds gives the text the answer's Python rendering gave, and a merchant reads the
same in it as in merchants/nearby, which is still rendered in Python (`merchant_row`)."""

from datetime import UTC, datetime

import pytest
from django.db import connection
from rest_framework.test import APIClient

from geomarket.api.responses import json_bytes
from geomarket.shapes import Field, Shape
from merchants import shapes
from merchants.models import Merchant
from merchants.serializers import AddressSerializer, MerchantDeliveringOutputSerializer
from tests import factories

pytestmark = pytest.mark.django_db

NASTY_TEXT = 'Caf\u00e9 "Q" \\ \u2028\u2029 \x01\x1f\t\x7f \U0001f600 </script> \u00a0 \n'

SAMPLES = {
    shapes.PLAIN_TEXT: ("text", ["", "plain", NASTY_TEXT, None]),
    shapes.INTEGER_LIST: ("bigint[]", [[], [7], [1, 20, 2**62], None]),
    shapes.INSTANT: (
        "timestamptz",
        [
            datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
            datetime(2026, 1, 2, 3, 4, 5, 120, tzinfo=UTC),
            datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
            None,
        ],
    ),
}


@pytest.mark.parametrize("kind", list(SAMPLES), ids=lambda kind: kind.name)
def test_each_kind_renders_in_sql_what_python_renders(kind):
    sql_type, values = SAMPLES[kind]
    shape = Shape("Sample", (Field("value", kind),))
    for value in values:
        statement = f"SELECT {shape.json_sql(alias='r')} FROM (SELECT %(v)s::{sql_type} AS value) r"  # noqa: S608
        with connection.cursor() as cursor:
            cursor.execute(statement, {"v": value})
            rendered = cursor.fetchone()[0]
        assert rendered.encode() == json_bytes(shape.render([value])), value


def test_the_schema_declares_the_answers_fields_in_order():
    assert list(MerchantDeliveringOutputSerializer().fields) == shapes.MERCHANT_DELIVERING.names
    assert list(AddressSerializer().fields) == shapes.MERCHANT_ADDRESS.names


def test_a_merchant_reads_the_same_as_in_merchants_nearby():
    """Everything but the zone's fields, for a merchant closed now (its next opening
    shown) and one open, with text that needs escaping and several categories."""
    here = {"lat": 52.52, "lng": 13.405}
    closed = factories.merchant(
        name=NASTY_TEXT,
        lat=52.521,
        lng=13.4053,
        categories=[factories.category(), factories.category()],
    )
    Merchant.objects.filter(pk=closed.pk).update(description=NASTY_TEXT, phone="+49 30 1")
    # Open one hour a week, the day after tomorrow: closed now, opening then.
    weekday = (datetime.now(UTC).weekday() + 2) % 7
    factories.hours(closed, (weekday, "10:00", "11:00"))
    always = factories.merchant(lat=52.5201, lng=13.4051)
    for shop in (closed, always):
        factories.zone(merchant=shop, fee="1.50")
    client = APIClient()
    delivering = client.get("/api/v1/merchants/delivering-to/", here).json()["results"]
    nearby = client.get("/api/v1/merchants/nearby/", here).json()["results"]
    assert [row["id"] for row in delivering] == [always.pk, closed.pk]
    assert [row["open_now"] for row in delivering] == [True, False]
    assert delivering[1]["next_opening_at"] is not None
    zone_fields = ["zone_id", "delivery_fee", "min_order_amount"]
    assert [{k: v for k, v in row.items() if k not in zone_fields} for row in delivering] == [
        row for row in nearby if row["id"] in (always.pk, closed.pk)
    ]
    assert [(row["delivery_fee"], row["min_order_amount"]) for row in delivering] == [
        ("1.50", "10.00")
    ] * 2
