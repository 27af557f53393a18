"""Serializer fields shared across apps: integers and ids, GeoJSON geometries, money and
timestamps, and the rule between the two ends of a range."""

import math
import re
from collections.abc import Mapping
from decimal import Decimal

from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.utils import html

from geomarket.geo import (
    AREA_SCHEMA,
    POINT_SCHEMA,
    GeoJSONError,
    area_from_geojson,
    geometry_to_geojson,
    point_from_geojson,
)

# PostgreSQL's bigint, the type of every primary key (`DEFAULT_AUTO_FIELD`) and the widest
# integer a column holds: a larger value would fail in the database instead of here.
BIGINT_MAX = 2**63 - 1
# Longer digit runs are beyond any column anyway; `int()` need not read them.
_INTEGER = re.compile(r"-?[0-9]{1,30}")
# A category's id (up to 18 digits, within bigint), or its slug (ASCII, as `SlugField`
# stores it) when that is not all digits. The `$` is safe once DRF has trimmed the text.
_CATEGORY_REF = r"^(?:[1-9][0-9]{0,17}|[-a-zA-Z0-9_]*[-a-zA-Z_][-a-zA-Z0-9_]*)$"


def parse_integer(text: str) -> int:
    """The integer `text` spells in ASCII digits, with an optional minus sign; ValueError
    for anything else.

    `int()` also reads other scripts' digits (Arabic-Indic "\u0663", full-width
    "\uff11"), surrounding spaces, a "+" and "1_000", and `str.isdigit()` is true for
    "\u00b2", which `int()` refuses: every integer taken from a client, in a query string
    or a body, is read here instead.
    """
    if not _INTEGER.fullmatch(text):
        raise ValueError(f"Not an integer in ASCII digits: {text!r}.")
    return int(text)


class StrictIntegerField(serializers.IntegerField):
    """An integer sent as a JSON number or as a string of ASCII digits (`parse_integer`),
    within `BIGINT_MAX` either way unless narrower bounds are given."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_value", BIGINT_MAX)
        kwargs.setdefault("min_value", -BIGINT_MAX - 1)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if isinstance(data, int) and not isinstance(data, bool):
            return data
        # JSON Schema's integers include 2.0.
        if isinstance(data, float) and data.is_integer():
            return int(data)
        if isinstance(data, str):
            try:
                return parse_integer(data)
            except ValueError:
                pass
        self.fail("invalid")


class IdField(StrictIntegerField):
    """A primary key: a positive bigint."""

    def __init__(self, **kwargs):
        kwargs.setdefault("min_value", 1)
        super().__init__(**kwargs)


class CategoryRefField(serializers.RegexField):
    """A category named by its id (an `int`, read as `IdField` reads it) or by its slug
    (a `str`)."""

    default_error_messages = {"invalid": "Enter a category id or slug."}

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 100)
        super().__init__(_CATEGORY_REF, **kwargs)
        self.id_field = IdField()

    def run_validation(self, data=serializers.empty):
        value = super().run_validation(data)
        # The pattern let through ASCII only, so `isdigit()` means 0-9 here.
        return self.id_field.run_validation(value) if value.isdigit() else value


def _text_only(to_internal_value):
    def read(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return to_internal_value(self, data)

    return read


# DRF's `CharField` (and `SlugField`, `RegexField`, `EmailField`... with it) turns a JSON
# number into text: `"city": 0` would be stored as "0". Query strings are text anyway; a
# body's text field takes a JSON string, as the OpenAPI schema says, and nothing else.
serializers.CharField.to_internal_value = _text_only(serializers.CharField.to_internal_value)


def _number_only(to_internal_value):
    def read(self, data):
        if isinstance(data, bool):
            self.fail("invalid")
        return to_internal_value(self, data)

    return read


# `float(True)` is 1.0: a JSON boolean where a number belongs is a mistake, not a number.
serializers.FloatField.to_internal_value = _number_only(serializers.FloatField.to_internal_value)


def _list_only(to_internal_value):
    def read(self, data):
        if isinstance(data, Mapping):
            self.fail("not_a_list", input_type=type(data).__name__)
        return to_internal_value(self, data)

    return read


# A many-to-many field (`category_ids`) iterates whatever it is given: a JSON object would
# be read as the list of its keys, and `{}` as no categories at all.
serializers.ManyRelatedField.to_internal_value = _list_only(
    serializers.ManyRelatedField.to_internal_value
)


GIVEN_MORE_THAN_ONCE = "Given more than once; give it once."


def _repeated_refuse(data, name: str) -> None:
    """A 400 naming `name` when a query string (a `QueryDict`) gives it more than once."""
    if html.is_html_input(data) and len(data.getlist(name)) > 1:
        raise serializers.ValidationError({name: [GIVEN_MORE_THAN_ONCE]})


def single_value(data: Mapping, name: str):
    """The value of `name` in `data`, None when it is absent; a 400 naming it when a query
    string gives it more than once."""
    _repeated_refuse(data, name)
    return data.get(name)


def _given_once(get_value):
    def read(self, dictionary):
        _repeated_refuse(dictionary, self.field_name)
        return get_value(self, dictionary)

    return read


# A query string may give a parameter more than once, and DRF's field reads its last copy:
# `?after=5&after=9` would be read as 9 with nothing said. A field that takes one value
# refuses that instead. Fields that take several (lists, multiple choices, nested
# serializers) read every copy with a `get_value` of their own, which this leaves alone.
serializers.Field.get_value = _given_once(serializers.Field.get_value)


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
    """A non-negative amount with 2 places, rendered as a string ("12.50").

    Read only from a string of ASCII digits with at most `decimal_places` places ("12.5",
    "3"), as the contract writes money: not a JSON number (a binary float is no amount),
    nor with an exponent, spaces or other scripts' digits, which `Decimal()` would take.
    `pattern` is the OpenAPI schema's too.
    """

    # DRF's "A valid number is required." invites a JSON number, which is refused.
    default_error_messages = {"invalid": 'Enter an amount as a decimal string, such as "12.50".'}

    def __init__(self, **kwargs):
        kwargs.setdefault("max_digits", 10)
        kwargs.setdefault("decimal_places", 2)
        kwargs.setdefault("min_value", Decimal("0"))
        kwargs.setdefault("coerce_to_string", True)
        super().__init__(**kwargs)
        sign = "" if self.min_value is not None and self.min_value >= 0 else "-?"
        self.pattern = re.compile(
            rf"{sign}[0-9]{{1,{self.max_whole_digits}}}(?:\.[0-9]{{1,{self.decimal_places}}})?"
        )

    def to_internal_value(self, data):
        if not isinstance(data, str) or not self.pattern.fullmatch(data):
            self.fail("invalid")
        return super().to_internal_value(data)


class JSONBooleanField(serializers.BooleanField):
    """`true` or `false` in a JSON body. DRF's `BooleanField` also takes 0, 1, "yes" and
    "on", as HTML forms and query strings spell them; a body's boolean is a boolean."""

    def to_internal_value(self, data):
        if isinstance(data, bool):
            return data
        self.fail("invalid")


class FiniteFloatField(serializers.FloatField):
    """A float that refuses NaN and infinities, which compare false against every bound;
    `above` is an exclusive lower bound (the OpenAPI schema's `exclusiveMinimum`)."""

    default_error_messages = {
        "non_finite": "A finite number is required.",
        "not_above": "Ensure this value is greater than {above}.",
    }

    def __init__(self, *, above: float | None = None, **kwargs):
        self.above = above
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if not math.isfinite(value):
            self.fail("non_finite")
        if self.above is not None and value <= self.above:
            self.fail("not_above", above=self.above)
        return value


# The space a query string makes of a timestamp's unencoded `+` (`?open_at=...T08:00+01:00`
# written into a URL as it is): before an offset, the one place a timestamp has no space.
_OFFSET_SIGN_READ_AS_SPACE = re.compile(r"(?<=\d) (?=\d{2}(?::?\d{2})?$)")


class TimestampField(serializers.DateTimeField):
    """DRF's timestamp, which with `in_query` also reads an offset's `+` that a query
    string read as a space: a client that wrote the timestamp into its URL unencoded got a
    400 for it. A body's timestamp (JSON) arrives as the client wrote it: a space before
    its offset is no ISO 8601, and stays a 400."""

    def __init__(self, *, in_query: bool = False, **kwargs):
        self.in_query = in_query
        super().__init__(**kwargs)

    def to_internal_value(self, value):
        if isinstance(value, str):
            if self.in_query:
                value = _OFFSET_SIGN_READ_AS_SPACE.sub("+", value, count=1)
            self.text_check(value)
        return super().to_internal_value(value)

    def text_check(self, value: str) -> None:
        """A subclass's own rule for the text, its `+` restored."""


class OffsetDateTimeField(TimestampField):
    """An ISO 8601 timestamp with its offset (`Z`, `+02:00`), as the contract's hours,
    closures and slots take every timestamp. Without one DRF would read it as UTC, which
    a client in another zone did not mean: a closure or a slot an hour or more off."""

    default_error_messages = {"naive": "Give the time with its offset (Z or +hh:mm)."}

    def text_check(self, value: str) -> None:
        try:
            moment = parse_datetime(value)
        except ValueError:
            moment = None  # out of range: DRF words it
        if moment is not None and moment.tzinfo is None:
            self.fail("naive")


def range_in_order(*, start_name: str, end_name: str, start, end) -> None:
    """Refuse a range whose start (`start_name`, a date or a time) comes after its end
    (`end_name`): a 400 filed under the start, rather than an answer that is always
    empty. Ends not given leave the range open."""
    if start is not None and end is not None and start > end:
        raise serializers.ValidationError({start_name: [f"Must not be after {end_name}."]})


class NearPointSerializer(serializers.Serializer):
    """`lat`, `lng` (WGS84 degrees) and `radius` in metres, as every geo query takes them,
    and which merchants to keep by their hours: open now, open at an instant, or all."""

    lat = FiniteFloatField(min_value=-90, max_value=90)
    lng = FiniteFloatField(min_value=-180, max_value=180)
    radius = FiniteFloatField(required=False, default=5000, above=0, max_value=50_000)
    limit = StrictIntegerField(required=False, default=20, min_value=1, max_value=100)
    open_now = serializers.BooleanField(
        required=False, default=False, help_text="Keep only merchants open now."
    )
    open_at = OffsetDateTimeField(
        in_query=True,
        required=False,
        default=None,
        allow_null=True,
        help_text="Keep only merchants open at this instant (ISO 8601 with an offset).",
    )

    def validate(self, attrs):
        if attrs.get("open_now") and attrs.get("open_at") is not None:
            raise serializers.ValidationError(
                {"open_at": ["Give open_now=true or open_at, not both."]}
            )
        return super().validate(attrs)


def format_money(value) -> str:
    return f"{value:.2f}"


def format_datetime(value) -> str:
    """The same ISO 8601 form DRF renders, for rows rendered without a serializer."""
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text
