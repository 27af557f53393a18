"""GeoJSON in and out, built with GEOS from plain coordinates; geodesy on WGS84.

Client geometries never pass through GDAL's parsers (see `SILENCED_SYSTEM_CHECKS`):
each position is checked to be a finite [lng, lat] pair in range, then GEOS builds the
geometry. Errors are `GeoJSONError` with a message a client can act on. Whether an area
can be a delivery zone's, however it was given (GeoJSON, the admin's map or WKT), is
`area_check`'s to say, which the zone services run.

Points placed by an offset in metres are measured on the WGS84 ellipsoid, like the
geography columns and the API's distances, so "4 km around the shop" is 4 km by
`ST_Distance` too. Offsets are never turned into degrees with one constant: a degree
of longitude is 68 km in Berlin, 111 km at the equator.
"""

import math
import struct
from collections.abc import Sequence
from itertools import pairwise
from typing import Any

from django.contrib.gis.geos import GEOSGeometry, LinearRing, MultiPolygon, Point, Polygon
from django.contrib.gis.geos.error import GEOSException

WGS84 = 4326
MAX_AREA_POSITIONS = 10_000


class GeoJSONError(ValueError):
    pass


# How an area across the antimeridian is given: PostGIS's geography takes no edge of 180°
# or more, and the same area in two parts is covered the same.
SPLIT_AT_ANTIMERIDIAN = (
    "split at ±180°, one part each side: a MultiPolygon of two polygons, or two zones"
)


class AreaError(ValueError):
    """An area no delivery zone may have; the message says what to change."""


def _position_fault(lng: float, lat: float) -> str | None:
    if not (math.isfinite(lng) and math.isfinite(lat)):
        return "Coordinates must be finite numbers."
    if not -180 <= lng <= 180:
        return "Longitude must be between -180 and 180."
    if not -90 <= lat <= 90:
        return "Latitude must be between -90 and 90."
    return None


def _ring_fault(positions: Sequence[Sequence[float]]) -> str | None:
    if len(positions) < 4:
        return "A polygon ring needs at least 4 positions."
    if tuple(positions[0][:2]) != tuple(positions[-1][:2]):
        return "A polygon ring must be closed: its first and last positions equal."
    return None


def _position(value: Any) -> tuple[float, float]:
    if not isinstance(value, (list, tuple)) or len(value) not in (2, 3):
        raise GeoJSONError("Each position must be [longitude, latitude].")
    lng, lat = _coordinate(value[0]), _coordinate(value[1])
    if fault := _position_fault(lng, lat):
        raise GeoJSONError(fault)
    return lng, lat


def _coordinate(number: Any) -> float:
    if isinstance(number, bool) or not isinstance(number, (int, float)):
        raise GeoJSONError("Coordinates must be numbers.")
    try:
        return float(number)
    except OverflowError:
        # JSON integers have no size limit; beyond about 1e308 no float holds them.
        raise GeoJSONError("Coordinates must be finite numbers.") from None


def lat_lng_point(*, lat: float, lng: float) -> Point:
    return Point(lng, lat, srid=WGS84)


def point_from_geojson(value: Any) -> Point:
    if not isinstance(value, dict) or value.get("type") != "Point":
        raise GeoJSONError(
            'Expected a GeoJSON Point: {"type": "Point", "coordinates": [lng, lat]}.'
        )
    lng, lat = _position(value.get("coordinates"))
    return Point(lng, lat, srid=WGS84)


def _ring(value: Any) -> LinearRing:
    if not isinstance(value, (list, tuple)):
        raise GeoJSONError("A polygon ring must be a list of positions.")
    # GEOS builds no ring from too few positions or an open ring: said here in the
    # words `area_check` uses.
    if len(value) < 4:
        raise GeoJSONError(_ring_fault(value))
    positions = [_position(item) for item in value]
    if fault := _ring_fault(positions):
        raise GeoJSONError(fault)
    return LinearRing(positions, srid=WGS84)


def _polygon(value: Any) -> Polygon:
    if not isinstance(value, (list, tuple)) or not value:
        raise GeoJSONError("A polygon needs at least one ring.")
    rings = [_ring(ring) for ring in value]
    return Polygon(*rings, srid=WGS84)


def _count_positions(coordinates: Any, depth: int) -> int:
    if depth == 0:
        return 1
    if not isinstance(coordinates, (list, tuple)):
        raise GeoJSONError("Malformed coordinates.")
    return sum(_count_positions(item, depth - 1) for item in coordinates)


def area_from_geojson(value: Any) -> MultiPolygon:
    """A Polygon or MultiPolygon as a MultiPolygon; a Polygon is wrapped. Read, not
    judged: whether it can be a zone's area (`area_check`: validity, edges across ±180°)
    is for the zone services to say, which every way of writing a zone goes through."""
    if not isinstance(value, dict):
        raise GeoJSONError("Expected a GeoJSON Polygon or MultiPolygon object.")
    kind = value.get("type")
    coordinates = value.get("coordinates")
    if kind not in ("Polygon", "MultiPolygon"):
        raise GeoJSONError(f"Expected a Polygon or MultiPolygon, got {kind!r}.")
    depth = 2 if kind == "Polygon" else 3
    if _count_positions(coordinates, depth) > MAX_AREA_POSITIONS:
        raise GeoJSONError(f"An area may have at most {MAX_AREA_POSITIONS} positions.")
    try:
        if kind == "Polygon":
            polygons = [_polygon(coordinates)]
        else:
            if not isinstance(coordinates, (list, tuple)) or not coordinates:
                raise GeoJSONError("A MultiPolygon needs at least one polygon.")
            polygons = [_polygon(item) for item in coordinates]
        return MultiPolygon(*polygons, srid=WGS84)
    except GEOSException as exc:
        raise GeoJSONError(f"Invalid geometry: {exc}") from exc


def _polygons(area: GEOSGeometry) -> list[Polygon]:
    if isinstance(area, Polygon):
        return [area]
    if isinstance(area, MultiPolygon):
        return list(area)
    raise AreaError(f"Expected a Polygon or MultiPolygon, got {area.geom_type}.")


def area_check(area: GEOSGeometry) -> None:
    """Refuse with `AreaError` an area no delivery zone may have, whichever way it was
    given: the one statement of these rules, run by the zone services.

    1. At least one polygon; each ring has at least 4 positions and is closed.
    2. Each position is finite, its longitude within ±180 and its latitude within ±90:
       PostGIS would fold 181 to -179 and 91 to 89 and store another area.
    3. No edge spans 180° of longitude or more. Geography, which decides coverage, takes
       an edge the short way round: one from 179.8 to -179.8 crosses the antimeridian,
       0.4° wide; the planar copies of the area (Web Mercator for the tiles, the coverage
       cells: migrations 0017, 0020 to 0022) read it as 359.6° wide, draw the zone round
       the world and cut it into hundreds of thousands of tile pieces. An edge of exactly
       180° runs over a pole as geography reads it.
    4. No ring reaches both -180 and 180. Its edges being short, it then goes all the way
       round the world, a band or a cap round a pole, which the planar copies cannot draw
       either. With 3., each edge's change of longitude the short way round is its plain
       difference, so these sum to 0 round any ring: no other ring winds round a pole.
    5. It is valid (OGC): no self-intersection, holes inside their shell.
    """
    polygons = _polygons(area)
    if not polygons:
        raise AreaError("An area needs at least one polygon.")
    for polygon in polygons:
        if polygon.empty:
            raise AreaError("A polygon needs at least one ring.")
        for ring in polygon:
            coords = ring.coords
            if fault := _ring_fault(coords):
                raise AreaError(fault)
            for position in coords:
                if fault := _position_fault(position[0], position[1]):
                    raise AreaError(fault)
            longitudes = [position[0] for position in coords]
            if any(abs(b - a) >= 180 for a, b in pairwise(longitudes)):
                raise AreaError(
                    "An edge of a ring may not span 180° of longitude or more: an area "
                    f"across the antimeridian must be {SPLIT_AT_ANTIMERIDIAN}."
                )
            if min(longitudes) == -180 and max(longitudes) == 180:
                raise AreaError(
                    "An area may not go all the way round the world or round a pole: it must "
                    f"be {SPLIT_AT_ANTIMERIDIAN}."
                )
    if not area.valid:
        raise AreaError(f"Invalid geometry: {area.valid_reason}.")


def area_right_handed(area: MultiPolygon) -> MultiPolygon:
    """`area` with each exterior ring counterclockwise and each hole clockwise, as RFC
    7946 §3.1.6 requires of GeoJSON: written so once, every answer that shows it (JSON,
    GeoJSON, tiles) is. The same area to PostGIS, which reads no meaning in a ring's
    direction; `area` itself when it already is."""
    turned = False
    polygons = []
    for polygon in area:
        rings = []
        for index, ring in enumerate(polygon):
            if ring.is_counterclockwise != (index == 0):
                ring = LinearRing(ring.coords[::-1])
                turned = True
            rings.append(ring)
        polygons.append(Polygon(*rings))
    return MultiPolygon(*polygons, srid=area.srid) if turned else area


def geometry_to_geojson(geometry: GEOSGeometry | None) -> dict | None:
    if geometry is None:
        return None
    return {"type": geometry.geom_type, "coordinates": _lists(geometry.coords)}


def _lists(coords: Sequence) -> list:
    return [_lists(item) if isinstance(item, (list, tuple)) else item for item in coords]


# EWKB type flags: a Z or M coordinate, an SRID after the type.
_WKB_Z, _WKB_M, _WKB_SRID = 0x80000000, 0x40000000, 0x20000000
_WKB_POLYGON, _WKB_MULTIPOLYGON = 3, 6


def area_ewkb_to_geojson(hex_ewkb: str) -> dict:
    """`geometry_to_geojson` of a 2D polygon or multipolygon read as hex EWKB (as
    PostgreSQL sends a geometry), the same coordinates read straight from its bytes: GEOS
    hands out a zone's few hundred coordinates one C call each, about 0.1 ms a zone."""
    data = bytes.fromhex(hex_ewkb)
    kind, order, offset = _wkb_header(data, 0)
    if kind == _WKB_POLYGON:
        return {"type": "Polygon", "coordinates": _wkb_rings(data, order, offset)[0]}
    if kind != _WKB_MULTIPOLYGON:
        return geometry_to_geojson(GEOSGeometry(hex_ewkb))
    (count,) = struct.unpack_from(order + "I", data, offset)
    offset += 4
    polygons = []
    for _ in range(count):
        kind, order, offset = _wkb_header(data, offset)
        if kind != _WKB_POLYGON:
            return geometry_to_geojson(GEOSGeometry(hex_ewkb))
        rings, offset = _wkb_rings(data, order, offset)
        polygons.append(rings)
    return {"type": "MultiPolygon", "coordinates": polygons}


def _wkb_header(data: bytes, offset: int) -> tuple[int | None, str, int]:
    """The type of the geometry at `offset` (None for one with Z or M), its byte order
    for `struct`, and where its body starts."""
    order = "<" if data[offset] == 1 else ">"
    (kind,) = struct.unpack_from(order + "I", data, offset + 1)
    offset += 5
    if kind & _WKB_SRID:
        offset += 4
    if kind & (_WKB_Z | _WKB_M):
        return None, order, offset
    return kind & 0x0FFFFFFF, order, offset


def _wkb_rings(data: bytes, order: str, offset: int) -> tuple[list, int]:
    """A polygon's rings as lists of `[x, y]`, from its body at `offset`, and where it ends."""
    (ring_count,) = struct.unpack_from(order + "I", data, offset)
    offset += 4
    rings = []
    for _ in range(ring_count):
        (points,) = struct.unpack_from(order + "I", data, offset)
        offset += 4
        values = struct.unpack_from(f"{order}{2 * points}d", data, offset)
        offset += 16 * points
        rings.append([[values[i], values[i + 1]] for i in range(0, 2 * points, 2)])
    return rings, offset


# The WGS84 ellipsoid: semi-major axis and flattening.
WGS84_A = 6_378_137.0
WGS84_F = 1 / 298.257223563
WGS84_B = WGS84_A * (1 - WGS84_F)
_E2 = WGS84_F * (2 - WGS84_F)
_EP2 = (WGS84_A**2 - WGS84_B**2) / WGS84_B**2

# Vincenty converges in two or three rounds at city distances; the cap only guards
# against near-antipodal input.
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


def _metres_per_radian(lat: float) -> tuple[float, float]:
    """The meridian's radius of curvature at `lat`, and the radius of its parallel."""
    phi = math.radians(lat)
    w = math.sqrt(1 - _E2 * math.sin(phi) ** 2)
    return WGS84_A * (1 - _E2) / w**3, WGS84_A / w * math.cos(phi)


def metres_per_degree(*, lat: float) -> tuple[float, float]:
    """Metres per degree of latitude and of longitude at `lat`, on WGS84.

    Good for offsets of a few kilometres around `lat`: the error grows with the square
    of the offset, a few metres at 8 km.
    """
    north, east = _metres_per_radian(lat)
    return math.radians(north), math.radians(east)


def local_distance_m(*, lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """The distance between two points a few kilometres apart, on a flat patch of WGS84.

    Degrees are scaled by the radii of curvature at the middle latitude: within a city
    the error stays below a metre, enough to keep a point inside an area with a margin.
    """
    north, east = _metres_per_radian((lat1 + lat2) / 2)
    return math.hypot(
        math.radians(lat2 - lat1) * north,
        math.radians((lng2 - lng1 + 540) % 360 - 180) * east,
    )


POINT_SCHEMA = {
    "type": "object",
    "description": "GeoJSON Point, coordinates [longitude, latitude] in WGS84; an altitude "
    "after them (RFC 7946) is read and ignored.",
    "required": ["type", "coordinates"],
    "properties": {
        "type": {"type": "string", "enum": ["Point"]},
        "coordinates": {
            "type": "array",
            "items": {"type": "number"},
            "minItems": 2,
            "maxItems": 3,
            "example": [13.405, 52.52],
        },
    },
}

AREA_SCHEMA = {
    "type": "object",
    "description": "GeoJSON Polygon or MultiPolygon in WGS84; stored as a MultiPolygon, "
    "exterior rings counterclockwise and holes clockwise (RFC 7946). No edge may span 180° "
    f"of longitude or more: an area across the antimeridian must be {SPLIT_AT_ANTIMERIDIAN}.",
    "required": ["type", "coordinates"],
    "properties": {
        "type": {"type": "string", "enum": ["Polygon", "MultiPolygon"]},
        "coordinates": {"type": "array", "items": {"type": "array", "items": {}}},
    },
}
