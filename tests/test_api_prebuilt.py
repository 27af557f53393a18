"""Serializers with their fields built once (`geomarket.api.validation.prebuilt`) validate
every body as a fresh DRF serializer does: the same data, or the same errors."""

import copy
import random
import threading

import pytest
from rest_framework import serializers
from rest_framework.exceptions import ValidationError

from delivery.serializers import LocationPingSerializer
from geomarket.api.fields import IdField
from geomarket.api.validation import prebuilt
from orders.serializers import OrderCreateSerializer


class Slot(serializers.Serializer):
    day = serializers.ChoiceField(choices=["mon", "tue"])
    hours = serializers.ListField(child=serializers.IntegerField(min_value=0, max_value=23))


class Booking(serializers.Serializer):
    """Defaults, optional and nested fields, a list of nested serializers, field and
    object rules: what a body serializer may declare."""

    shop_id = IdField()
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=5)
    slots = Slot(many=True, allow_empty=False, max_length=2)
    first = Slot(required=False)

    def validate_note(self, value):
        return value.upper()

    def validate(self, attrs):
        if attrs["shop_id"] == 13:
            raise serializers.ValidationError("Shop 13 takes no bookings.")
        return attrs


def pick(rng: random.Random, valid: list, invalid: list):
    """Mostly a valid value, so that the other fields decide too."""
    return rng.choice(valid if rng.random() < 0.9 else invalid)


def order_body(rng: random.Random):
    body = {
        "merchant_id": pick(rng, [1, 7, "8", 2.0], [0, -1, "x", 1.5, True, None, 2**63]),
        "items": [
            {
                "product_id": pick(rng, [index, str(index)], [0, None, "a"]),
                "quantity": pick(rng, [1, 5, 999, "2"], [0, 1000, True, 2.5, None]),
            }
            for index in range(1, pick(rng, [2, 3, 4], [1, 1, 1]))
        ],
        "delivery_address": {
            "line1": pick(rng, ["1 Bench Street"], ["", 7, "x" * 201]),
            "line2": pick(rng, ["", "Flat 2"], [None]),
            "city": pick(rng, ["Berlin"], [" ", None]),
            "postal_code": pick(rng, ["10178"], [10178]),
            "location": pick(
                rng,
                [{"type": "Point", "coordinates": [13.4, 52.5]}],
                [
                    {"type": "Point", "coordinates": [500, 1]},
                    {"type": "Polygon", "coordinates": []},
                    [13.4, 52.5],
                ],
            ),
        },
    }
    if rng.random() < 0.05:
        body["items"].append(dict(body["items"][0]) if body["items"] else "item")
    if rng.random() < 0.1:
        parent = rng.choice([body, body["delivery_address"]])
        parent.pop(rng.choice(list(parent)))
    if rng.random() < 0.03:
        body["items"] = rng.choice([{}, "items", [1, 2], [{"product_id": 1, "quantity": 1}] * 101])
    return pick(rng, [body], [[], "body", None])


def booking_body(rng: random.Random):
    slot = lambda: {  # noqa: E731
        "day": pick(rng, ["mon", "tue"], ["sun"]),
        "hours": pick(rng, [[9], [9, 10], []], [[24], "9"]),
    }
    body = {
        "shop_id": pick(rng, [1, 2], [13, 0]),
        "note": pick(rng, ["hi", ""], ["toolong", None]),
        "slots": [slot() for _ in range(pick(rng, [1, 2], [0, 3]))],
        "first": slot(),
    }
    if rng.random() < 0.2:
        del body[rng.choice(list(body))]
    return body


def ping_body(rng: random.Random) -> dict:
    body = {
        "lat": pick(rng, [52.52, -90, 90.0, "13.4"], [91, "x", None, True, float("nan")]),
        "lng": pick(rng, [13.4, 180, -180.0], [181, "", [], "1e999"]),
        "heading": pick(rng, [0, 359.5, 360, None], [-1, 361, "north"]),
        "speed_mps": pick(rng, [0, 12.5, 100], [-0.1, 101, {}]),
        "accuracy_m": pick(rng, [0, 5, 10000], [10001, -3, "far"]),
        "recorded_at": pick(
            rng, ["2026-12-02T10:00:00Z"], ["yesterday", "2026-13-01T00:00:00Z", 5]
        ),
    }
    for name in ("heading", "speed_mps", "accuracy_m", "recorded_at"):
        if rng.random() < 0.4:
            del body[name]
    return body


def outcome(validate, data):
    try:
        return "valid", validate(data)
    except ValidationError as exc:
        return "invalid", exc.detail


def drf(serializer_class):
    def validate(data):
        serializer = serializer_class(data=data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    return validate


@pytest.mark.parametrize(
    ("serializer_class", "body"),
    [
        (OrderCreateSerializer, order_body),
        (Booking, booking_body),
        (LocationPingSerializer, ping_body),
    ],
)
def test_a_prebuilt_serializer_answers_every_body_as_a_fresh_one(serializer_class, body):
    fast, reference = prebuilt(serializer_class), drf(serializer_class)
    rng = random.Random(5)
    kinds = set()
    for _ in range(3000):
        data = body(rng)
        expected = outcome(reference, copy.deepcopy(data))
        assert outcome(fast, data) == expected, data
        kinds.add(expected[0])
    assert kinds == {"valid", "invalid"}


def test_a_prebuilt_serializer_is_shared_safely_by_threads():
    fast, reference = prebuilt(OrderCreateSerializer), drf(OrderCreateSerializer)
    rng = random.Random(11)
    bodies = [order_body(rng) for _ in range(400)]
    expected = [outcome(reference, copy.deepcopy(data)) for data in bodies]
    mismatches = []

    def run(offset):
        for index in range(len(bodies)):
            index = (index + offset) % len(bodies)
            if outcome(fast, bodies[index]) != expected[index]:
                mismatches.append(index)

    threads = [threading.Thread(target=run, args=(offset * 50,)) for offset in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not mismatches
