"""Serializer fields shared across apps: GeoJSON geometries and money."""

from decimal import Decimal

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from geomarket.geo import (
    AREA_SCHEMA,
    POINT_SCHEMA,
    GeoJSONError,
    area_from_geojson,
    geometry_to_geojson,
    point_from_geojson,
)


@extend_schema_field(POINT_SCHEMA)
class GeoJSONPointField(serializers.Field):
    def to_internal_value(self, data):
        try:
            return point_from_geojson(data)
        except GeoJSONError as exc:
            raise serializers.ValidationError(str(exc)) from exc

    def to_representation(self, value):
        return geometry_to_geojson(value)


@extend_schema_field(AREA_SCHEMA)
class GeoJSONAreaField(serializers.Field):
    def to_internal_value(self, data):
        try:
            return area_from_geojson(data)
        except GeoJSONError as exc:
            raise serializers.ValidationError(str(exc)) from exc

    def to_representation(self, value):
        return geometry_to_geojson(value)


class MoneyField(serializers.DecimalField):
    """A non-negative amount with 2 places, rendered as a string ("12.50")."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_digits", 10)
        kwargs.setdefault("decimal_places", 2)
        kwargs.setdefault("min_value", Decimal("0"))
        kwargs.setdefault("coerce_to_string", True)
        super().__init__(**kwargs)
