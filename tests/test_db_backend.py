"""The project's PostGIS backend registers geometry adapters once per connection."""

from django.contrib.gis.db.backends.postgis.base import DatabaseWrapper as PostGISWrapper
from django.contrib.gis.geos import Point
from django.db import connection, connections

from geomarket.db.postgis.base import DatabaseWrapper


def test_a_connection_gets_its_geometry_adapters_once(db, monkeypatch):
    registrations = []
    register = PostGISWrapper.register_geometry_adapters

    def counted(self, pg_connection, clear_caches=False):
        registrations.append(clear_caches)
        return register(self, pg_connection, clear_caches)

    monkeypatch.setattr(PostGISWrapper, "register_geometry_adapters", counted)
    connection.ensure_connection()
    assert isinstance(connections["default"], DatabaseWrapper)
    pg_connection = connection.connection
    # As a pooled connection is checked out again and again.
    for _ in range(3):
        connection.register_geometry_adapters(pg_connection)
    assert registrations == []
    connection.register_geometry_adapters(pg_connection, clear_caches=True)
    assert registrations == [True]
    with connection.cursor() as cursor:
        point = connection.ops.Adapter(Point(13.4, 52.5, srid=4326))
        cursor.execute("SELECT ST_AsText(%s::geometry)", [point])
        assert cursor.fetchone()[0] == "POINT(13.4 52.5)"
