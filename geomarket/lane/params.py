"""Query-string and JSON body parsers derived from DRF serializers, for the fast routes.

A fast route must read its parameters exactly as the view's serializer reads them, and
must not restate the serializer's rules: `query_parser` reads the serializer's declared
fields (their bounds, defaults, choices, `required`, `allow_blank`...) once, at import,
and builds one small reader per field. Floats, integers, booleans, choices and text are
read here without DRF's machinery when plainly spelled, and left to Django otherwise;
other fields are read by their own `to_internal_value` or `run_validation`. The
serializer's `validate_<field>` methods and its `validate()` run as DRF runs them, on one
instance made at import (so they must not read `context` or `initial_data`), and a field
or rule added to the serializer is the fast route's at once.

The parser answers None, for Django to answer, for anything it cannot vouch for:
invalid values, repeated parameters, an undecodable or long query, and DRF's `format`
override. Other undeclared parameters are ignored, as DRF ignores them.

`body_parser` does the same for a JSON body already decoded: numbers for float fields are
read here, every other field by its own `run_validation`, as DRF's `to_internal_value`
runs it.
"""

import math
import re
from collections.abc import Callable

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import (
    MaxValueValidator,
    MinValueValidator,
    ProhibitNullCharactersValidator,
)
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.fields import SkipField, empty
from rest_framework.settings import api_settings
from rest_framework.validators import ProhibitSurrogateCharactersValidator

from geomarket.api.fields import FiniteFloatField, StrictIntegerField, parse_integer
from geomarket.lane import front_cache

# Far below Django's DATA_UPLOAD_MAX_NUMBER_FIELDS, whose 400 Django must give.
MAX_FIELDS = 20
# Plain spellings only; exponents, signs but "-", spaces and long digit runs go to Django.
_PLAIN_FLOAT = re.compile(r"-?[0-9]{1,15}(?:\.[0-9]{1,15})?")
# What a reader returns for a value it refuses, or leaves to Django for being oddly
# spelled ("\u0665\u0662", " 52.5", "1e1"), though the field might read it.
_REFUSED = object()
# What a reader returns for a field absent from the validated data.
_SKIPPED = object()
# Fields whose query-string value is not one string (lists, nested serializers) or that
# take no value from the client: a serializer with one of them gets no fast parser.
_UNSUPPORTED = (
    serializers.ListField,
    serializers.DictField,
    serializers.MultipleChoiceField,
    serializers.ManyRelatedField,
    serializers.BaseSerializer,
    serializers.HiddenField,
)


def _bounds(field) -> Callable | None:
    """`value -> bool` for the field's `MinValueValidator` and `MaxValueValidator`, or
    None when it has other validators, which only its own `run_validation` runs."""
    low = high = None
    for validator in field.validators:
        limit = getattr(validator, "limit_value", None)
        if callable(limit):
            return None
        if type(validator) is MinValueValidator:
            low = limit if low is None else max(low, limit)
        elif type(validator) is MaxValueValidator:
            high = limit if high is None else min(high, limit)
        else:
            return None
    if low is None and high is None:
        return lambda value: True
    if high is None:
        return lambda value: low <= value
    if low is None:
        return lambda value: value <= high
    return lambda value: low <= value <= high


def _float_accepts(field) -> Callable[[float], bool] | None:
    """`value -> bool` for a float field: finite, above its exclusive bound (`above`),
    within its bounds; None when it has validators only its `run_validation` runs."""
    within, above = _bounds(field), getattr(field, "above", None)
    if within is None:
        return None
    return lambda value: math.isfinite(value) and (above is None or value > above) and within(value)


def _fast_reader(field) -> Callable[[str], object] | None:
    """A reader of a non-empty text for the common field types: the field's value for a
    plainly spelled text, `_REFUSED` for any other. None for fields read by their own
    `run_validation`."""
    kind = type(field)
    if kind in (serializers.FloatField, FiniteFloatField):
        accepts = _float_accepts(field)
        if accepts is None:
            return None

        def read_float(text, match=_PLAIN_FLOAT.fullmatch):
            if not match(text):
                return _REFUSED
            value = float(text)
            return value if accepts(value) else _REFUSED

        return read_float
    if issubclass(kind, StrictIntegerField) and kind.to_internal_value is (
        StrictIntegerField.to_internal_value
    ):
        within = _bounds(field)
        if within is None:
            return None

        def read_integer(text):
            try:
                value = parse_integer(text)
            except ValueError:
                return _REFUSED
            return value if within(value) else _REFUSED

        return read_integer
    if kind is serializers.BooleanField:
        true = frozenset(v for v in field.TRUE_VALUES if isinstance(v, str))
        false = frozenset(v for v in field.FALSE_VALUES if isinstance(v, str))
        null = frozenset(v for v in field.NULL_VALUES if isinstance(v, str))

        def read_boolean(text):
            lowered = text.lower()
            if lowered in true:
                return True
            if lowered in false:
                return False
            return None if field.allow_null and lowered in null else _REFUSED

        return read_boolean
    if kind is serializers.ChoiceField:
        choices = dict(field.choice_strings_to_values)
        return lambda text: choices.get(text, _REFUSED)
    if kind is serializers.CharField:
        plain = (ProhibitNullCharactersValidator, ProhibitSurrogateCharactersValidator)
        lengths = [v for v in field.validators if not isinstance(v, plain)]
        if any(
            type(v).__name__ not in ("MinLengthValidator", "MaxLengthValidator") for v in lengths
        ):
            return None
        shortest, longest = field.min_length or 0, field.max_length or math.inf

        def read_text(text):
            # Text DRF would trim, or refuse for NUL or surrogates.
            if text != text.strip() or not text.isprintable():
                return _REFUSED
            return text if shortest <= len(text) <= longest else _REFUSED

        return read_text
    if not isinstance(field, serializers.CharField) and (
        kind.run_validation is serializers.Field.run_validation
    ):
        # DRF's `Field.run_validation` of a non-empty text is `to_internal_value` and the
        # validators: money, dates and the like are read by the field's own conversion.
        within = _bounds(field)
        if within is None:
            return None

        def read_value(text):
            try:
                value = field.to_internal_value(text)
            except ValidationError:
                return _REFUSED
            return value if within(value) else _REFUSED

        return read_value
    return None


def _reader(field) -> Callable[[str], object]:
    """The field's reader of a non-empty query value: its value or `_REFUSED`."""
    fast = _fast_reader(field)

    def run(value):
        try:
            return field.run_validation(value)
        except ValidationError:
            return _REFUSED

    return run if fast is None else fast


def _derived(serializer_class, *, unsupported: tuple = ()):
    """The serializer made once, its writable fields each with its `validate_<field>`
    method, and its `validate()` (None when not overridden), as DRF runs them."""
    serializer = serializer_class()
    if serializer.validators:
        raise TypeError(
            f"{serializer_class.__name__}: serializer-level validators are not derived."
        )
    fields = []
    for field in serializer._writable_fields:
        if isinstance(field, unsupported) or "." in field.source or field.source == "*":
            raise TypeError(f"{serializer_class.__name__}.{field.field_name} cannot be read here.")
        fields.append((field, getattr(serializer, f"validate_{field.field_name}", None)))
    validate = (
        serializer.validate
        if type(serializer).validate is not serializers.Serializer.validate
        else None
    )
    return fields, validate


def query_parser(serializer_class: type[serializers.Serializer]) -> Callable[[bytes], dict | None]:
    """`raw query -> serializer_class(data=QueryDict(raw)).validated_data`, or None for
    a query only Django should answer (invalid, repeated or unusual)."""
    fields, validate = _derived(serializer_class, unsupported=_UNSUPPORTED)
    steps = [
        (field.field_name, field.source, _absent_reader(field), _reader(field), validate_field)
        for field, validate_field in fields
    ]
    format_name = api_settings.URL_FORMAT_OVERRIDE

    def parse(raw: bytes) -> dict | None:
        given = front_cache.query_pairs(raw, max_fields=MAX_FIELDS)
        if given is None or (format_name and format_name in given):
            return None
        attrs = {}
        try:
            for name, source, read_absent, read, validate_field in steps:
                text = given.get(name)
                value = read(text) if text else read_absent(text)
                if value is _REFUSED:
                    return None
                if value is _SKIPPED:
                    continue
                attrs[source] = value if validate_field is None else validate_field(value)
            return attrs if validate is None else validate(attrs)
        except (ValidationError, DjangoValidationError):
            return None

    return parse


def _json_float_reader(field) -> Callable[[object], object] | None:
    """A reader of a float field's JSON value: the float for a JSON number within the
    field's bounds, `_REFUSED` for anything else (text, booleans, which DRF reads as 1.0
    and 0.0, null). None for a field read by its own `run_validation`."""
    if type(field) not in (serializers.FloatField, FiniteFloatField):
        return None
    accepts = _float_accepts(field)
    if accepts is None:
        return None

    def read_float(value):
        if type(value) is not float and type(value) is not int:
            return _REFUSED
        try:
            value = float(value)
        except OverflowError:
            return _REFUSED
        return value if accepts(value) else _REFUSED

    return read_float


def body_parser(serializer_class: type[serializers.Serializer]) -> Callable[[object], dict | None]:
    """`data -> serializer_class(data=data).validated_data` for a decoded JSON body, or
    None for a body only Django should answer (invalid, or unusually spelled)."""
    fields, validate = _derived(serializer_class)
    steps = [
        (field.field_name, field.source, _json_float_reader(field), field.run_validation, check)
        for field, check in fields
    ]

    def parse(data: object) -> dict | None:
        if type(data) is not dict:
            return None
        attrs = {}
        try:
            for name, source, read_float, run_validation, validate_field in steps:
                value = data.get(name, empty)
                if read_float is not None and value is not empty:
                    value = read_float(value)
                    if value is _REFUSED:
                        return None
                else:
                    try:
                        value = run_validation(value)
                    except SkipField:
                        continue
                attrs[source] = value if validate_field is None else validate_field(value)
            return attrs if validate is None else validate(attrs)
        except (ValidationError, DjangoValidationError):
            return None

    return parse


def _absent_reader(field) -> Callable[[str | None], object]:
    """The field's value when its parameter is missing (None) or empty, as DRF reads a
    form field (`Field.get_value`: defaults, `allow_blank`, `allow_null`)."""

    def primitive(text):
        if text is None:
            return field.default_empty_html
        if field.allow_null:
            return "" if getattr(field, "allow_blank", False) else None
        if not field.required:
            return "" if getattr(field, "allow_blank", False) else empty
        return text

    def run(text):
        try:
            return field.run_validation(primitive(text))
        except SkipField:
            return _SKIPPED
        except ValidationError:
            return _REFUSED

    if field.default is not empty and callable(field.default):
        return run
    # A missing parameter is the common case: its reading is computed once.
    missing = run(None)
    return lambda text: missing if text is None else run(text)
