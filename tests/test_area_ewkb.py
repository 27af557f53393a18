"""A zone's area rendered from its EWKB bytes is what GEOS gives of it
(`geometry_to_geojson`), coordinate for coordinate."""

import json

import pytest
from django.contrib.gis.geos import GEOSGeometry
from django.db import connection

from geomarket.geo import area_ewkb_to_geojson, geometry_to_geojson

pytestmark = pytest.mark.django_db

AREAS = [
    "POLYGON((13.4 52.5, 13.41 52.5, 13.41 52.51, 13.4 52.5))",
    "MULTIPOLYGON(((0 0,10 0,10 10,0 10,0 0),(1 1,2 1,2 2,1 1)),((20 20,21 20,21 21,20 20)))",
    "MULTIPOLYGON(((-0.1 51.123456789012345,0.2 51.1,0.2 51.3,-0.1 51.123456789012345)))",
    # With Z: read by GEOS.
    "MULTIPOLYGON Z (((0 0 1,1 0 1,1 1 1,0 0 1)))",
]


@pytest.mark.parametrize("wkt", AREAS)
@pytest.mark.parametrize("order", ["NDR", "XDR"])
def test_an_areas_geojson_is_geoss(wkt, order):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT encode(ST_AsEWKB(ST_GeomFromText(%s, 4326), %s), 'hex')", [wkt, order]
        )
        (hex_ewkb,) = cursor.fetchone()
    expected = geometry_to_geojson(GEOSGeometry(hex_ewkb))
    assert json.dumps(area_ewkb_to_geojson(hex_ewkb)) == json.dumps(expected)
