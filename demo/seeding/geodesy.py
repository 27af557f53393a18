"""Points and delivery-zone rings placed by geodesic offsets in metres.

Everything is measured on the WGS84 ellipsoid, like the geography columns and the
API's distances, so a zone "4 km around the shop" is 4 km by `ST_Distance` too.
Offsets are never turned into degrees: a degree of longitude in Berlin is 68 km,
at the equator 111 km.
"""

import math
import random
from collections.abc import Sequence

WGS84_A = 6_378_137.0
WGS84_F = 1 / 298.257223563
WGS84_B = WGS84_A * (1 - WGS84_F)
_EP2 = (WGS84_A**2 - WGS84_B**2) / WGS84_B**2

# Vincenty converges in two or three rounds at city distances; the cap only guards
# against near-antipodal input, which the seed never produces.
_MAX_ITERATIONS = 50

LatLng = tuple[float, float]


def geodesic_destination(
    *, lat: float, lng: float, bearing_deg: float, distance_m: float
) -> LatLng:
    """The point `distance_m` from (lat, lng) along the initial bearing, on WGS84.

    Vincenty's direct formula (1975): sub-millimetre against GeographicLib, which is
    what PostGIS measures geography distances with.
    """
    alpha1 = math.radians(bearing_deg)
    sin_alpha1 = math.sin(alpha1)
    cos_alpha1 = math.cos(alpha1)
    tan_u1 = (1 - WGS84_F) * math.tan(math.radians(lat))
    cos_u1 = 1 / math.sqrt(1 + tan_u1 * tan_u1)
    sin_u1 = tan_u1 * cos_u1
    sigma1 = math.atan2(tan_u1, cos_alpha1)
    sin_alpha = cos_u1 * sin_alpha1
    cos2_alpha = 1 - sin_alpha * sin_alpha
    u2 = cos2_alpha * _EP2
    big_a = 1 + u2 / 16384 * (4096 + u2 * (-768 + u2 * (320 - 175 * u2)))
    big_b = u2 / 1024 * (256 + u2 * (-128 + u2 * (74 - 47 * u2)))

    sigma = distance_m / (WGS84_B * big_a)
    for _ in range(_MAX_ITERATIONS):
        cos_2sigma_m = math.cos(2 * sigma1 + sigma)
        sin_sigma = math.sin(sigma)
        cos_sigma = math.cos(sigma)
        delta_sigma = (
            big_b
            * sin_sigma
            * (
                cos_2sigma_m
                + big_b
                / 4
                * (
                    cos_sigma * (-1 + 2 * cos_2sigma_m * cos_2sigma_m)
                    - big_b
                    / 6
                    * cos_2sigma_m
                    * (-3 + 4 * sin_sigma * sin_sigma)
                    * (-3 + 4 * cos_2sigma_m * cos_2sigma_m)
                )
            )
        )
        previous = sigma
        sigma = distance_m / (WGS84_B * big_a) + delta_sigma
        if abs(sigma - previous) < 1e-12:
            break
    cos_2sigma_m = math.cos(2 * sigma1 + sigma)
    sin_sigma = math.sin(sigma)
    cos_sigma = math.cos(sigma)

    x = sin_u1 * sin_sigma - cos_u1 * cos_sigma * cos_alpha1
    lat2 = math.atan2(
        sin_u1 * cos_sigma + cos_u1 * sin_sigma * cos_alpha1,
        (1 - WGS84_F) * math.sqrt(sin_alpha * sin_alpha + x * x),
    )
    lam = math.atan2(sin_sigma * sin_alpha1, cos_u1 * cos_sigma - sin_u1 * sin_sigma * cos_alpha1)
    c = WGS84_F / 16 * cos2_alpha * (4 + WGS84_F * (4 - 3 * cos2_alpha))
    big_l = lam - (1 - c) * WGS84_F * sin_alpha * (
        sigma + c * sin_sigma * (cos_2sigma_m + c * cos_sigma * (-1 + 2 * cos_2sigma_m**2))
    )
    lng2 = (lng + math.degrees(big_l) + 540) % 360 - 180
    return math.degrees(lat2), lng2


_E2 = WGS84_F * (2 - WGS84_F)


def local_distance_m(*, lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """The distance between two points a few kilometres apart, on a flat patch of WGS84.

    Degrees are scaled by the radii of curvature at the middle latitude: within a city
    the error stays below a metre, enough to keep a point inside an area with a margin.
    """
    phi = math.radians((lat1 + lat2) / 2)
    w = math.sqrt(1 - _E2 * math.sin(phi) ** 2)
    north = math.radians(lat2 - lat1) * WGS84_A * (1 - _E2) / w**3
    east = math.radians((lng2 - lng1 + 540) % 360 - 180) * WGS84_A / w * math.cos(phi)
    return math.hypot(north, east)


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
