"""Serializer fields shared across apps: GeoJSON geometries and money."""

import math
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


class FiniteFloatField(serializers.FloatField):
    """A float that refuses NaN and infinities, which compare false against every bound."""

    default_error_messages = {"non_finite": "A finite number is required."}

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if not math.isfinite(value):
            self.fail("non_finite")
        return value


class NearPointSerializer(serializers.Serializer):
    """`lat`, `lng` (WGS84 degrees) and `radius` in metres, as every geo query takes them."""

    lat = FiniteFloatField(min_value=-90, max_value=90)
    lng = FiniteFloatField(min_value=-180, max_value=180)
    radius = FiniteFloatField(required=False, default=5000, max_value=50_000)
    limit = serializers.IntegerField(required=False, default=20, min_value=1, max_value=100)

    def validate_radius(self, value: float) -> float:
        if value <= 0:
            raise serializers.ValidationError("The radius must be greater than 0 metres.")
        return value


def format_money(value) -> str:
    return f"{value:.2f}"


def format_datetime(value) -> str:
    """The same ISO 8601 form DRF renders, for rows rendered without a serializer."""
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text
