"""`geomarket.geo`'s flat-patch geodesy against pyproj's geodesics on WGS84."""

import math
import random

import pytest

from geomarket.geo import geodesic_destination, local_distance_m, metres_per_degree
from tests.geo_fixtures import geodesic_m

# Berlin, Reykjavik, Sydney, and a point on the equator beside the 180° meridian.
PLACES = [(52.52, 13.405), (64.1466, -21.9426), (-33.8688, 151.2093), (0.0, 179.99)]


def _offsets(seed: int, *, count: int, longest_m: float):
    rng = random.Random(seed)
    return [(rng.uniform(0, 360), rng.uniform(0, longest_m)) for _ in range(count)]


@pytest.mark.parametrize(("lat", "lng"), PLACES)
def test_local_distance_is_within_a_metre_of_the_geodesic_within_a_city(lat, lng):
    for bearing, metres in _offsets(1, count=500, longest_m=10_000):
        lat2, lng2 = geodesic_destination(lat=lat, lng=lng, bearing_deg=bearing, distance_m=metres)

        distance = local_distance_m(lat1=lat, lng1=lng, lat2=lat2, lng2=lng2)

        assert distance == pytest.approx(geodesic_m(lat, lng, lat2, lng2), abs=1.0)


@pytest.mark.parametrize(("lat", "lng"), PLACES)
def test_metres_per_degree_places_points_a_few_metres_off_at_8_km(lat, lng):
    per_degree_lat, per_degree_lng = metres_per_degree(lat=lat)
    for bearing, metres in _offsets(2, count=500, longest_m=8_000):
        north = metres * math.cos(math.radians(bearing))
        east = metres * math.sin(math.radians(bearing))
        lat2, lng2 = lat + north / per_degree_lat, lng + east / per_degree_lng

        assert geodesic_m(lat, lng, lat2, lng2) == pytest.approx(metres, abs=5.0)
