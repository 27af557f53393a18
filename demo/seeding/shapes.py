"""Where the seed puts things: points scattered like a city, and delivery-zone rings.

Offsets are geodesic, in metres on WGS84 (`geomarket.geo.geodesic_destination`), so a
zone "4 km around the shop" is 4 km by `ST_Distance` too.
"""

import math
import random
from collections.abc import Sequence

from geomarket.geo import LatLng, geodesic_destination


def scattered_point(*, rng: random.Random, lat: float, lng: float, radius_m: float) -> LatLng:
    """A point within `radius_m` of the centre, denser towards the middle like a city.

    Four in five points follow a 2-D Gaussian (a Rayleigh-distributed distance) for the
    dense core; the rest are uniform over the disc for the suburbs. Points beyond the
    radius are drawn again rather than clamped, which would pile them up on the rim.
    """
    sigma = radius_m / 2.5
    distance = radius_m
    for _ in range(100):
        if rng.random() < 0.8:
            distance = sigma * math.sqrt(-2 * math.log(1 - rng.random()))
        else:
            distance = radius_m * math.sqrt(rng.random())
        if distance < radius_m:
            break
    return geodesic_destination(
        lat=lat, lng=lng, bearing_deg=rng.uniform(0, 360), distance_m=min(distance, radius_m)
    )


def round_ring(*, rng: random.Random, lat: float, lng: float, radius_m: float) -> list[LatLng]:
    """A wobbly circle, the shape of an isochrone more than of a compass drawing.

    Vertices sit at evenly spaced bearings with a gently varying radius, so the ring is
    star-shaped around the centre: simple, valid, and always containing it.
    """
    vertices = 36
    lobes = rng.randint(2, 4)
    phase = rng.uniform(0, 2 * math.pi)
    amplitude = rng.uniform(0.04, 0.12)
    ring = []
    for index in range(vertices):
        bearing = index * 360 / vertices
        wobble = 1 + amplitude * math.sin(lobes * math.radians(bearing) + phase)
        distance = radius_m * wobble * rng.uniform(0.97, 1.03)
        ring.append(
            geodesic_destination(lat=lat, lng=lng, bearing_deg=bearing, distance_m=distance)
        )
    return ring


def irregular_ring(*, rng: random.Random, lat: float, lng: float, radius_m: float) -> list[LatLng]:
    """A hand-drawn-looking polygon of 7 to 12 corners around the centre.

    Each corner keeps to its own sector of bearings, so bearings strictly increase and
    no gap reaches 180°: the polygon stays simple and keeps the centre inside.
    """
    corners = rng.randint(7, 12)
    sector = 360 / corners
    offset = rng.uniform(0, sector)
    ring = []
    for index in range(corners):
        bearing = offset + index * sector + rng.uniform(-0.3, 0.3) * sector
        distance = radius_m * rng.uniform(0.6, 1.25)
        ring.append(
            geodesic_destination(lat=lat, lng=lng, bearing_deg=bearing, distance_m=distance)
        )
    return ring


def point_ewkt(*, lat: float, lng: float) -> str:
    return f"SRID=4326;POINT({lng:.7f} {lat:.7f})"


def multipolygon_ewkt(*, ring: Sequence[LatLng]) -> str:
    """One-polygon MultiPolygon, counter-clockwise and closed as RFC 7946 and OGC want.

    Rings are built with bearings increasing, which is clockwise seen from above.
    """
    ordered = list(reversed(ring))
    ordered.append(ordered[0])
    coordinates = ",".join(f"{lng:.7f} {lat:.7f}" for lat, lng in ordered)
    return f"SRID=4326;MULTIPOLYGON((({coordinates})))"
