"""Response shapes declared once (`geomarket.shapes`): the SQL rendering of every kind of
value is what DRF renders in Python, and the products' stored JSON follows its shape."""

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.gis.geos import Point
from django.db import connection
from rest_framework.renderers import JSONRenderer

from analytics import shapes as analytics_shapes
from catalog import stored_json
from catalog.models import Product
from catalog.serializers import ProductOutputSerializer
from catalog.shapes import PRODUCT, PRODUCT_JSON_COLUMN
from delivery.models import Vehicle
from geomarket import shapes
from tests import factories

pytestmark = pytest.mark.django_db

NASTY_TEXT = 'Caf\u00e9 "Q" \\ \u2028\u2029 \x01\x1f\t\x7f \U0001f600 </script> \u00a0 \n'

# Values of each kind, as PostgreSQL holds them (SQL type) and Python reads them.
SAMPLES = {
    shapes.INTEGER: ("bigint", [0, -7, 2**62, None]),
    shapes.TEXT: ("text", ["", "plain", NASTY_TEXT, None]),
    shapes.BOOLEAN: ("boolean", [True, False]),
    shapes.MONEY: ("numeric", [Decimal("0"), Decimal("12.5"), Decimal("12.345"), None]),
    shapes.DATE: ("date", [date(2026, 3, 1), date(1970, 1, 1)]),
    shapes.DATETIME: (
        "timestamptz",
        [
            datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
            datetime(2026, 1, 2, 3, 4, 5, 120, tzinfo=UTC),
            datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        ],
    ),
    shapes.METRES: ("float8", [0.0, 12.344, 1234.5678, 49999.995, 0.125, 2.675]),
    shapes.MEASURE: ("real", [4.2, 90.0, 0.0, 359.9, 0.001, 9999.5, None]),
}


@pytest.mark.parametrize("kind", list(SAMPLES), ids=lambda kind: kind.name)
def test_each_kind_renders_in_sql_what_drf_renders(kind):
    sql_type, values = SAMPLES[kind]
    shape = shapes.Shape("Sample", (shapes.Field("value", kind),))
    renderer = JSONRenderer()
    for value in values:
        statement = f"SELECT {shape.json_sql(alias='r')} FROM (SELECT %(v)s::{sql_type} AS value) r"  # noqa: S608
        with connection.cursor() as cursor:
            cursor.execute(statement, {"v": value})
            rendered = cursor.fetchone()[0]
        expected = renderer.render(shape.render([value]))
        if kind in (shapes.METRES, shapes.MEASURE):
            # Two places kept in SQL's text, or numeric's text (90 for 90.0): the same number.
            assert json.loads(rendered) == json.loads(expected), value
        else:
            assert rendered.encode() == expected, value


def test_points_render_in_sql_as_geojson_does():
    shape = shapes.Shape("Sample", (shapes.Field("location", shapes.POINT),))
    point = Point(13.404954, 52.520008, srid=4326)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {shape.json_sql(alias='r')} FROM (SELECT %(p)s::geography AS location) r",  # noqa: S608
            {"p": point.ewkt},
        )
        rendered = cursor.fetchone()[0]
    assert rendered.encode() == JSONRenderer().render(shape.render([point]))


def test_a_kind_without_sql_cannot_be_rendered_in_sql():
    python_only = shapes.Kind("ratio", lambda: None, float)
    shape = shapes.Shape("Sample", (shapes.Field("share", python_only),))
    with pytest.raises(TypeError, match="share"):
        shape.json_sql(alias="r")


def test_the_serializer_has_the_shapes_fields_in_order():
    assert list(ProductOutputSerializer().fields) == PRODUCT.names


def _stored(product_id: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {PRODUCT_JSON_COLUMN} FROM catalog_product WHERE id = %s",  # noqa: S608
            [product_id],
        )
        return cursor.fetchone()[0]


def test_the_installed_trigger_is_the_one_the_product_shape_gives():
    function, body, _ = stored_json.trigger_function()
    with connection.cursor() as cursor:
        assert shapes.installed_function_body(cursor, function) == body
    assert stored_json.sync() is False


def test_each_products_stored_json_is_its_serializer_output():
    product = factories.product(
        merchant=factories.merchant(), title=NASTY_TEXT, description="\u2029 and more"
    )
    Product.objects.filter(pk=product.pk).update(
        created_at=datetime(2026, 1, 2, 3, 4, 5, 600, tzinfo=UTC)
    )
    product.refresh_from_db()
    expected = JSONRenderer().render(ProductOutputSerializer(product).data)
    assert _stored(product.pk).encode() == expected


def test_a_changed_shape_replaces_the_trigger_and_renders_every_row_again(monkeypatch):
    product = factories.product(merchant=factories.merchant(), title="Rye bread")
    narrower = shapes.Shape("ProductOutput", PRODUCT.fields[:4])
    monkeypatch.setattr(stored_json, "PRODUCT", narrower)
    assert stored_json.sync() is True
    assert _stored(product.pk) == f'{{"id":{product.pk},"merchant_id":{product.merchant_id},' + (
        f'"category_id":{product.category_id},"title":"Rye bread"}}'
    )
    # Later writes follow the new shape too; a second sync finds nothing to do.
    Product.objects.filter(pk=product.pk).update(updated_at=datetime.now(UTC) + timedelta(1))
    assert _stored(product.pk).endswith('"title":"Rye bread"}')
    assert stored_json.sync() is False


def test_a_shape_reading_a_column_not_yet_migrated_waits_for_its_migration(monkeypatch):
    product = factories.product(merchant=factories.merchant(), title="Rye bread")
    wider = shapes.Shape("ProductOutput", (*PRODUCT.fields, shapes.Field("unit", shapes.TEXT)))
    monkeypatch.setattr(stored_json, "PRODUCT", wider)
    assert stored_json.sync() is False
    # The installed function stays, and writes go on through it.
    Product.objects.filter(pk=product.pk).update(title="Rye")
    product.refresh_from_db()
    expected = JSONRenderer().render(ProductOutputSerializer(product).data)
    assert _stored(product.pk).encode() == expected


# The analytics kinds keep trailing zeros in SQL's text (0.250000): the same numbers.
REPORT_SAMPLES = {
    analytics_shapes.SHARE: (
        "numeric",
        [None, Decimal("0"), Decimal("1"), Decimal("0.25"), Decimal("0.1234565"), Decimal("1e-9")],
    ),
    analytics_shapes.RATE: (
        "numeric",
        [None, Decimal("0"), Decimal("1"), Decimal("0.00005"), Decimal("0.66666666666666666667")],
    ),
    analytics_shapes.MINUTES: (
        "interval",
        [
            timedelta(0),
            timedelta(minutes=12, seconds=18),
            timedelta(seconds=0.3),
            timedelta(hours=2, microseconds=600_001),
            timedelta(days=1, seconds=27),
            None,
        ],
    ),
}


@pytest.mark.parametrize("kind", list(REPORT_SAMPLES), ids=lambda kind: kind.name)
def test_report_kinds_render_in_sql_the_numbers_python_renders(kind):
    sql_type, values = REPORT_SAMPLES[kind]
    shape = shapes.Shape("Sample", (shapes.Field("value", kind),))
    for value in values:
        statement = f"SELECT {shape.json_sql(alias='r')} FROM (SELECT %(v)s::{sql_type} AS value) r"  # noqa: S608
        with connection.cursor() as cursor:
            cursor.execute(statement, {"v": value})
            rendered = cursor.fetchone()[0]
        assert json.loads(rendered) == shape.render([value]), value


def test_nullable_fields_render_null_in_sql_as_in_python():
    shape = shapes.Shape(
        "Sample",
        (
            shapes.Field("location", shapes.POINT, null=True),
            shapes.Field("at", shapes.DATETIME, null=True),
            shapes.Field("vehicle", shapes.choice(Vehicle), null=True),
        ),
    )
    assert all(field.allow_null for field in shape.serializer()().fields.values())
    point = Point(13.404954123456789, 52.520008987654321, srid=4326)
    for values in (
        (None, None, None),
        (point, datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC), "car"),
    ):
        statement = (
            f"SELECT {shape.json_sql(alias='r')} FROM (SELECT %(p)s::geography AS location,"  # noqa: S608
            " %(t)s::timestamptz AS at, %(v)s::text AS vehicle) r"
        )
        with connection.cursor() as cursor:
            cursor.execute(
                statement, {"p": values[0] and values[0].ewkt, "t": values[1], "v": values[2]}
            )
            rendered = cursor.fetchone()[0]
        assert rendered.encode() == JSONRenderer().render(shape.render(values)), values


def test_a_point_read_as_coordinates_renders_as_the_geometry():
    point = Point(13.404954123456789, 52.520008987654321, srid=4326)
    shape = shapes.Shape("Sample", (shapes.Field("location", shapes.POINT),))
    assert shape.render([shapes.point_of(point.x, point.y)]) == shape.render([point])
