"""GeoJSON in and out, built with GEOS from plain coordinates.

Client geometries never pass through GDAL's parsers (see `SILENCED_SYSTEM_CHECKS`):
each position is checked to be a finite [lng, lat] pair in range, then GEOS builds the
geometry. Errors are `GeoJSONError` with a message a client can act on.
"""

import math
from collections.abc import Sequence
from typing import Any

from django.contrib.gis.geos import GEOSGeometry, LinearRing, MultiPolygon, Point, Polygon
from django.contrib.gis.geos.error import GEOSException

WGS84 = 4326
MAX_AREA_POSITIONS = 10_000


class GeoJSONError(ValueError):
    pass


def _position(value: Any) -> tuple[float, float]:
    if not isinstance(value, (list, tuple)) or len(value) not in (2, 3):
        raise GeoJSONError("Each position must be [longitude, latitude].")
    lng, lat = _coordinate(value[0]), _coordinate(value[1])
    if not -180 <= lng <= 180:
        raise GeoJSONError("Longitude must be between -180 and 180.")
    if not -90 <= lat <= 90:
        raise GeoJSONError("Latitude must be between -90 and 90.")
    return lng, lat


def _coordinate(number: Any) -> float:
    if isinstance(number, bool) or not isinstance(number, (int, float)):
        raise GeoJSONError("Coordinates must be numbers.")
    try:
        number = float(number)
    except OverflowError:
        # JSON integers have no size limit; beyond about 1e308 no float holds them.
        raise GeoJSONError("Coordinates must be finite numbers.") from None
    if not math.isfinite(number):
        raise GeoJSONError("Coordinates must be finite numbers.")
    return number


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
    if len(value) < 4:
        raise GeoJSONError("A polygon ring needs at least 4 positions.")
    positions = [_position(item) for item in value]
    if positions[0] != positions[-1]:
        raise GeoJSONError("A polygon ring must be closed: its first and last positions equal.")
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
    """A Polygon or MultiPolygon as a valid MultiPolygon; a Polygon is wrapped."""
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
        area = MultiPolygon(*polygons, srid=WGS84)
    except GEOSException as exc:
        raise GeoJSONError(f"Invalid geometry: {exc}") from exc
    if not area.valid:
        raise GeoJSONError(f"Invalid geometry: {area.valid_reason}.")
    return area


def geometry_to_geojson(geometry: GEOSGeometry | None) -> dict | None:
    if geometry is None:
        return None
    return {"type": geometry.geom_type, "coordinates": _lists(geometry.coords)}


def _lists(coords: Sequence) -> list:
    return [_lists(item) if isinstance(item, (list, tuple)) else item for item in coords]


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
    "description": "GeoJSON Polygon or MultiPolygon in WGS84; stored as a MultiPolygon.",
    "required": ["type", "coordinates"],
    "properties": {
        "type": {"type": "string", "enum": ["Polygon", "MultiPolygon"]},
        "coordinates": {"type": "array", "items": {"type": "array", "items": {}}},
    },
}
