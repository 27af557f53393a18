"""The foundation talks to real PostGIS and real Redis."""

import uuid

import pytest
from django.contrib.gis.geos import Point
from django.core.cache import cache
from django.db import connection
from django_redis import get_redis_connection


@pytest.mark.django_db
def test_st_dwithin_on_geography_runs_in_postgis():
    # Two points on the equator one thousandth of a degree of longitude apart are
    # 111.3 m apart on the WGS84 ellipsoid.
    origin = Point(0.0, 0.0, srid=4326)
    east = Point(0.001, 0.0, srid=4326)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT ST_DWithin(%s::geography, %s::geography, 112),
                   ST_DWithin(%s::geography, %s::geography, 111),
                   ST_Distance(%s::geography, %s::geography)
            """,
            [origin.ewkt, east.ewkt] * 3,
        )
        within_112, within_111, distance = cursor.fetchone()
    assert within_112 is True
    assert within_111 is False
    assert distance == pytest.approx(111.32, abs=0.01)


def test_cache_round_trip_goes_through_redis():
    key = f"platform-test-{uuid.uuid4()}"
    cache.set(key, {"answer": 42}, timeout=30)
    try:
        assert cache.get(key) == {"answer": 42}
        raw_key = cache.make_key(key)
        redis = get_redis_connection("default")
        assert redis.exists(raw_key) == 1
        assert 0 < redis.ttl(raw_key) <= 30
    finally:
        cache.delete(key)
    assert cache.get(key) is None
