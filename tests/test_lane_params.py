"""Query parsers derived from DRF parameter serializers (`geomarket.lane.params`): a field
or rule added to a serializer is the fast route's at once, read exactly as DRF reads it."""

import itertools
import random
from datetime import timedelta
from decimal import Decimal
from urllib.parse import urlencode

import pytest
from django.http import QueryDict
from rest_framework import serializers

from catalog.serializers import ProductsNearbyParamsSerializer
from geomarket.api.fields import FiniteFloatField, IdField, MoneyField
from geomarket.lane.params import body_parser, query_parser


class WiderNearbyParams(ProductsNearbyParamsSerializer):
    """The nearby parameters with fields of every kind the next filters need."""

    open_now = serializers.BooleanField(required=False, default=False)
    # Missing from a form, DRF reads a boolean without a default as false.
    gift = serializers.BooleanField(required=False)
    min_rating = FiniteFloatField(required=False, min_value=0, max_value=5)
    slot = serializers.ChoiceField(choices=["morning", "evening"], required=False)
    zone_id = IdField(required=False)
    tip = MoneyField(required=False, max_value=Decimal("20"))
    note = serializers.CharField(required=False, allow_blank=True, max_length=5)
    shop = serializers.CharField(min_length=2, max_length=10)

    def validate_shop(self, value):
        if value == "closed":
            raise serializers.ValidationError("Closed.")
        return value.upper()

    def validate(self, attrs):
        attrs = super().validate(attrs)
        if attrs.get("slot") == "evening" and attrs["open_now"]:
            raise serializers.ValidationError("No evening slot for shops open now.")
        return attrs


TOKENS = {
    "lat": ["52.52", "-33.9", "90.5", "", "x", "1e1"],
    "lng": ["13.405", "-180", "181", ""],
    "open_now": ["true", "False", "1", "no", "maybe", ""],
    "min_rating": ["4.5", "0", "5", "5.01", "-1", "", "nan", " 3"],
    "slot": ["morning", "evening", "Morning", ""],
    "zone_id": ["1", "42", "0", "-1", "", "1.0", "\u0663"],
    "tip": ["1.50", "2", "1.555", "-1", "", "1e2", "20.01", "25"],
    "note": ["hi", "", "toolong", " hi"],
    "shop": ["bakery", "closed", "b", "x" * 11, "", "\x00ab"],
    "min_price": ["1", "5"],
    "max_price": ["3", "10"],
    "page": ["2"],
}


def agrees(parse, serializer_class, query: str) -> bool:
    parsed = parse(query.encode())
    reference = serializer_class(data=QueryDict(query))
    valid = reference.is_valid()
    if parsed is None:
        return False
    assert valid, (query, reference.errors)
    assert parsed == dict(reference.validated_data), query
    return True


def test_fields_added_to_a_serializer_are_read_without_editing_any_route():
    parse = query_parser(WiderNearbyParams)
    parsed = parse(b"lat=52.5&lng=13.4&shop=bakery&open_now=true&min_rating=4.5&zone_id=7&tip=2")
    assert parsed == {
        "lat": 52.5,
        "lng": 13.4,
        "radius": 5000,
        "limit": 20,
        "in_stock": True,
        "deliverable": False,
        "open_now": True,
        "open_at": None,
        "gift": False,
        "min_rating": 4.5,
        "zone_id": 7,
        "tip": WiderNearbyParams().fields["tip"].to_internal_value("2"),
        "shop": "BAKERY",
    }
    # The new fields' bounds, choices, requirement and rules are derived too.
    for query in [
        b"lat=52.5&lng=13.4",
        b"lat=52.5&lng=13.4&shop=bakery&min_rating=5.5",
        b"lat=52.5&lng=13.4&shop=bakery&slot=noon",
        b"lat=52.5&lng=13.4&shop=bakery&tip=20.01",
        b"lat=52.5&lng=13.4&shop=closed",
        b"lat=52.5&lng=13.4&shop=bakery&slot=evening&open_now=1",
        b"lat=52.5&lng=13.4&shop=bakery&min_price=5&max_price=3",
    ]:
        assert parse(query) is None, query


def test_a_derived_parser_reads_every_query_it_takes_as_the_serializer_does():
    parse = query_parser(WiderNearbyParams)
    rng = random.Random(3)
    taken = 0
    for _ in range(4000):
        # Mostly a valid point and shop, so that the other parameters decide.
        pairs = [
            (name, rng.choice(values[:1] if rng.random() < 0.8 else values))
            for name, values in TOKENS.items()
            if name in ("lat", "lng", "shop") or rng.random() < 0.4
        ]
        rng.shuffle(pairs)
        taken += agrees(parse, WiderNearbyParams, urlencode(pairs))
    assert taken > 100


def test_plain_queries_are_decided_exactly_as_the_serializer_decides():
    parse = query_parser(WiderNearbyParams)
    plain = {
        "open_now": ["true", "false", "1", "no", "maybe", ""],
        "min_rating": ["4.5", "0", "5.01", ""],
        "slot": ["morning", "evening", "Morning", ""],
        "zone_id": ["42", "0", ""],
        "note": ["hi", "", "toolong"],
        "shop": ["bakery", "closed", "b", ""],
    }
    # The rules join at most two fields, so every pair of values, with the other fields
    # absent or at their first value, decides each rule and each meeting of two rules
    # (a few hundred queries where the whole product is eleven thousand).
    for first, second in itertools.combinations(plain, 2):
        for one, other in itertools.product([None, *plain[first]], [None, *plain[second]]):
            for background in ({}, {name: values[0] for name, values in plain.items()}):
                chosen = {**background, first: one, second: other}
                pairs = [("lat", "52.5"), ("lng", "13.4")]
                pairs += [(name, chosen[name]) for name in plain if chosen.get(name) is not None]
                query = urlencode(pairs)
                assert (
                    agrees(parse, WiderNearbyParams, query)
                    == WiderNearbyParams(data=QueryDict(query)).is_valid()
                ), query


@pytest.mark.parametrize(
    "query",
    [
        b"lat=52.5&lng=13.4&shop=bakery&format=json",
        b"lat=52.5&lng=13.4&shop=bakery&shop=bakery",
        b"lat=52.5&lng=13.4&shop=bakery&zone_id=%EF%BC%97",
        b"lat=%D9%A5%D9%A2&lng=13.4&shop=bakery",
    ],
)
def test_repeated_oddly_spelled_or_format_parameters_are_left_to_django(query):
    assert query_parser(WiderNearbyParams)(query) is None


def test_fields_a_query_string_cannot_carry_as_one_value_refuse_derivation():
    class Listed(serializers.Serializer):
        ids = serializers.ListField(child=IdField())

    with pytest.raises(TypeError):
        query_parser(Listed)


# JSON values for `LocationPingSerializer`'s fields: numbers, and what DRF reads otherwise
# (numbers as text, booleans as 1.0, null, out of range, far past a float).
PING_VALUES = {
    "lat": [52.5, 52, -90, 90.01, "52.5", True, None, 10**400, "x"],
    "lng": [13.4, -180, 180.5, 0, False],
    "heading": [90.0, 0, 360, 361, -1, "90", None],
    "speed_mps": [4.2, 0, 100.5, [1]],
    "accuracy_m": [6.0, 10_000, 10_001.0],
    "recorded_at": ["now", "2020-01-01T00:00:00Z", "x", 5, None, "ahead"],
}


def ping_body(rng: random.Random) -> dict:
    from django.utils import timezone

    times = {
        "now": timezone.now().isoformat(),
        "ahead": (timezone.now() + timedelta(minutes=5)).isoformat(),
    }
    body = {}
    for name, values in PING_VALUES.items():
        if name in ("lat", "lng") or rng.random() < 0.5:
            value = rng.choice(values[:1] if rng.random() < 0.7 else values)
            body[name] = times.get(value, value) if isinstance(value, str) else value
    if rng.random() < 0.05:
        body["unknown"] = 1
    return body


def test_a_derived_body_parser_takes_what_the_serializer_takes_and_reads_it_the_same():
    from delivery.serializers import LocationPingSerializer

    parse = body_parser(LocationPingSerializer)
    rng = random.Random(5)
    taken = refused_valid = 0
    for _ in range(3000):
        body = ping_body(rng)
        parsed = parse(body)
        reference = LocationPingSerializer(data=body)
        valid = reference.is_valid()
        if parsed is None:
            refused_valid += valid
            continue
        assert valid, (body, reference.errors)
        assert parsed == dict(reference.validated_data), body
        taken += 1
    assert taken > 500
    # Only oddly spelled values (numbers as text, booleans) are left to Django when valid.
    assert refused_valid < taken
    assert parse([{"lat": 1, "lng": 2}]) is None
    assert parse({"lat": 52.5, "lng": 13.4}) == {"lat": 52.5, "lng": 13.4}
    assert parse({"lat": 52, "lng": 13.4, "heading": 0}) == {
        "lat": 52.0,
        "lng": 13.4,
        "heading": 0.0,
    }
