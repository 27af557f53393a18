"""A merchant's public reads (its detail, the public list, its hours, a day's slots) are
rendered by PostgreSQL and sent as it rendered them: each must answer the bytes and
headers DRF rendered from the schema's serializers, for every caller, edge cases
included, by one statement whose plan the session keeps."""

from datetime import UTC, datetime, time, timedelta

import pytest
from django.contrib.gis.geos import Point
from django.db import connection
from django.db.backends.postgresql.psycopg_any import DateTimeTZRange
from django.utils import timezone
from rest_framework.renderers import JSONRenderer

from geomarket.api.cors import EXPOSED
from geomarket.api.pagination import page_body
from geomarket.shapes import GEOJSON_POINT, Field, Shape, installed_function_body
from merchants import serializers
from merchants.models import Closure, Merchant, OpeningInterval, SlotBooking
from merchants.selectors import (
    KEPT_PLANS,
    _as_shown,
    _listed,
    merchant_day_slots,
    merchant_visible,
)
from merchants.services import address_update, slot_plan_set
from merchants.shapes import CLOCK, MERCHANT_HOURS, MERCHANT_OUTPUT, SLOT
from tests import factories
from tests.market import api_client_as

pytestmark = pytest.mark.django_db

MERCHANTS = "/api/v1/merchants/"
NASTY_TEXT = 'Caf\u00e9 "Q" \\ \u2028\u2029 \x01\x1f\t\x7f \U0001f600 </script> \u00a0 \n'
NOT_FOUND = b'{"detail":"Not found."}'
# What the views answered with DRF's Response, but the length: the same with the bytes
# sent as PostgreSQL rendered them (a 404 too, as DRF's exception handler renders it).
HEADERS = {
    "detail": {"Allow": "GET, PUT, PATCH, DELETE, HEAD, OPTIONS"},
    "list": {"Allow": "GET, POST, HEAD, OPTIONS"},
    "hours": {"Allow": "GET, PUT, HEAD, OPTIONS"},
    "slots": {"Allow": "GET, HEAD, OPTIONS"},
}
COMMON_HEADERS = {
    "Content-Type": "application/json",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}
# Public reads vary with the credentials, and are open to pages of other origins when
# asked for without any (geomarket/api/cors.py).
CALLER_HEADERS = {"Vary": "Cookie, Authorization"}
ANONYMOUS_HEADERS = {
    **CALLER_HEADERS,
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": EXPOSED,
}


def drf(data) -> bytes:
    return JSONRenderer().render(data)


def answered(user, path: str, resource: str, query=None) -> tuple[int, bytes]:
    """The status and body of `user`'s GET, its headers checked against what DRF sent."""
    response = api_client_as(user).get(path, query or {})
    headers = dict(response.headers)
    assert headers.pop("Content-Length") == str(len(response.content))
    expected = {
        **COMMON_HEADERS,
        **HEADERS[resource],
        **(ANONYMOUS_HEADERS if user is None else CALLER_HEADERS),
    }
    assert headers == expected, path
    return response.status_code, response.content


def _weekday_after(days: int) -> int:
    return (datetime.now(UTC).weekday() + days) % 7


@pytest.fixture
def shops():
    """Merchants whose answers need every rendering's care."""
    fruit, bread = factories.category(), factories.category()
    nasty = factories.merchant(name=NASTY_TEXT, categories=[bread, fruit], lat=52.5, lng=13.25)
    Merchant.objects.filter(pk=nasty.pk).update(
        description=NASTY_TEXT,
        phone="+49 \u2028 30",
        learned_prep_time_s=754,
        require_handover_code=True,
        created_at=datetime(2026, 1, 2, 3, 4, 5, 120, tzinfo=UTC),
    )
    address_update(address=nasty.address, data={"line1": NASTY_TEXT, "line2": "\u2029"})
    # Integral coordinates keep their ".0", as Python writes a float.
    whole = factories.merchant(name="Whole degrees", lat=52.0, lng=-0.0, categories=[fruit])
    # Closed now, open one hour the day after tomorrow, in New York.
    weekly = factories.merchant(name="Weekly", lat=40.7128, lng=-74.006)
    factories.hours(weekly, (_weekday_after(2), "09:30", "10:30"), timezone="America/New_York")
    # Open every day around the clock in Kolkata, but closed by a closure now.
    closed = factories.merchant(name="Closed for now", lat=22.5726, lng=88.3639)
    factories.hours(closed, *((day, "00:00", "00:00") for day in range(7)), timezone="Asia/Kolkata")
    now = timezone.now()
    factories.closure(
        closed, (now - timedelta(hours=1)).isoformat(), (now + timedelta(hours=5)).isoformat()
    )
    # Closed for longer than the 14 days an answer looks ahead: no next opening.
    shut = factories.merchant(name="Shut", lat=-33.8688, lng=151.2093)
    factories.closure(
        shut, (now - timedelta(days=1)).isoformat(), (now + timedelta(days=20)).isoformat()
    )
    hidden = factories.merchant(name="Hidden", is_active=False)
    return {
        "nasty": nasty,
        "whole": whole,
        "weekly": weekly,
        "closed": closed,
        "shut": shut,
        "hidden": hidden,
    }


def serialized(merchant_id: int, user=None) -> bytes:
    return drf(
        serializers.MerchantOutputSerializer(
            merchant_visible(user=user, merchant_id=merchant_id)
        ).data
    )


def test_a_details_bytes_are_the_serializers_for_every_caller(shops):
    operator = factories.user(is_staff=True)
    stranger = factories.merchant().owner
    hidden = shops["hidden"]
    for shop in shops.values():
        for user in (None, shop.owner, operator, stranger):
            status, body = answered(user, f"{MERCHANTS}{shop.pk}/", "detail")
            if shop is hidden and user in (None, stranger):
                assert (status, body) == (404, NOT_FOUND)
            else:
                assert (status, body) == (200, serialized(shop.pk, user)), (shop.name, user)
    assert answered(None, f"{MERCHANTS}{hidden.pk + 1000}/", "detail") == (
        404,
        NOT_FOUND,
    )


def test_the_edge_cases_are_what_they_name(shops):
    """So the comparison above compares what it means to."""
    import json

    details = {
        name: json.loads(api_client_as(shop.owner).get(f"{MERCHANTS}{shop.pk}/").content)
        for name, shop in shops.items()
    }
    raw = api_client_as(None).get(f"{MERCHANTS}{shops['whole'].pk}/").content
    assert b'"coordinates":[-0.0,52.0]' in raw
    assert b"\\u2028" in api_client_as(None).get(f"{MERCHANTS}{shops['nasty'].pk}/").content
    assert details["nasty"]["prep_time_s"] == 754
    assert details["nasty"]["created_at"] == "2026-01-02T03:04:05.000120Z"
    assert (details["weekly"]["open_now"], details["weekly"]["next_opening_at"] is None) == (
        False,
        False,
    )
    assert (details["closed"]["open_now"], details["closed"]["next_opening_at"] is None) == (
        False,
        False,
    )
    assert (details["shut"]["open_now"], details["shut"]["next_opening_at"]) == (False, None)
    assert details["whole"]["open_now"] is True
    assert details["hidden"]["is_active"] is False


def listed_bytes(query: dict) -> bytes:
    """The list's page as DRF rendered it: the serializer's rows in its page shape."""
    page, size = int(query.get("page", 1)), int(query.get("page_size", 20))
    category = query.get("category")
    # An id or a slug, as `CategoryRefField` reads it.
    category = int(category) if category and category.isdigit() else category
    merchants = _as_shown(
        _listed(category=category, q=query.get("q")).select_related("address")
    ).order_by("name", "id")
    from urllib.parse import urlencode

    base = "http://testserver/api/v1/merchants/" + (f"?{urlencode(query)}" if query else "")
    return drf(
        page_body(
            count=merchants.count(),
            number=page,
            page_size=size,
            link_base=base,
            results=serializers.MerchantOutputSerializer(
                merchants[(page - 1) * size : page * size], many=True
            ).data,
        )
    )


def test_the_lists_bytes_are_the_serializers(shops):
    bread = shops["nasty"].categories.order_by("id").first()
    for query in (
        {},
        {"page_size": "2"},
        {"page_size": "2", "page": "2"},
        {"page_size": "2", "page": "3"},
        {"category": str(bread.pk)},
        {"category": bread.slug, "q": "caf"},
        {"q": "e"},
        {"q": "nothing like it"},
    ):
        status, body = answered(None, MERCHANTS, "list", query)
        assert (status, body) == (200, listed_bytes(query)), query
    assert answered(None, MERCHANTS, "list", {"page": "9"})[0] == 404
    last = answered(None, MERCHANTS, "list", {"page": "last", "page_size": "2"})
    assert last == (
        200,
        listed_bytes({"page": "3", "page_size": "2"}).replace(b"page=3&", b"page=last&"),
    )


def test_hours_bytes_are_the_serializers_for_every_caller(shops):
    hidden = shops["hidden"]
    factories.hours(hidden, (0, "08:00", "12:30"), (5, "22:00", "02:00"), (5, "06:15", "07:00"))
    for shop in shops.values():
        for user in (None, shop.owner):
            status, body = answered(user, f"{MERCHANTS}{shop.pk}/hours/", "hours")
            if shop is hidden and user is None:
                assert (status, body) == (404, NOT_FOUND)
                continue
            shop.refresh_from_db()
            weekly = OpeningInterval.objects.filter(merchant=shop).order_by("weekday", "opens")
            expected = serializers.MerchantHoursSerializer(
                {"timezone": shop.timezone, "weekly": weekly.values("weekday", "opens", "closes")}
            ).data
            assert (status, body) == (200, drf(expected)), shop.name


@pytest.fixture
def slotted():
    """A merchant open every day, delivering in 45-minute slots of 3 orders: tomorrow one
    slot is full, one overbooked, one half taken, and a closure takes out the evening."""
    shop = factories.merchant(lat=40.7128, lng=-74.006)
    factories.hours(
        shop, *((day, "06:00", "23:45") for day in range(7)), timezone="America/New_York"
    )
    slot_plan_set(merchant=shop, slot_minutes=45, capacity=3, lead_minutes=0, horizon_days=3)
    return shop


def _tomorrow():
    return (timezone.now() + timedelta(days=1)).date()


def test_slots_bytes_are_the_serializers(slotted):
    day = _tomorrow()
    starts = [slot["starts_at"] for slot in merchant_day_slots(merchant=slotted, day=day)]
    for starts_at, booked in zip(starts[:3], (3, 5, 2), strict=True):
        SlotBooking.objects.create(
            merchant=slotted,
            starts_at=starts_at,
            ends_at=starts_at + timedelta(minutes=45),
            booked=booked,
        )
    evening = starts[-4]
    Closure.objects.create(
        merchant=slotted, period=DateTimeTZRange(evening, evening + timedelta(hours=3)), reason=""
    )
    slots = merchant_day_slots(merchant=slotted, day=day)
    assert [slot["available"] for slot in slots[:3]] == [0, 0, 1]
    assert len(slots) == len(starts) - 4
    for query_day in (day, day + timedelta(days=1), day + timedelta(days=30)):
        status, body = answered(
            None,
            f"{MERCHANTS}{slotted.pk}/slots/",
            "slots",
            {"date": str(query_day)},
        )
        expected = serializers.SlotSerializer(
            merchant_day_slots(merchant=slotted, day=query_day), many=True
        ).data
        assert (status, body) == (200, drf(expected)), query_day
    assert body == b"[]"


def test_slots_answer_the_merchant_before_the_date(slotted):
    hidden = factories.merchant(is_active=False)
    slot_plan_set(merchant=hidden, slot_minutes=30, capacity=1, lead_minutes=0, horizon_days=2)
    day = {"date": str(_tomorrow())}
    bad = {"date": "tomorrow"}
    assert answered(None, f"{MERCHANTS}{hidden.pk}/slots/", "slots", day) == (404, NOT_FOUND)
    assert answered(None, f"{MERCHANTS}{hidden.pk}/slots/", "slots", bad) == (404, NOT_FOUND)
    assert answered(None, f"{MERCHANTS}{hidden.pk + 999}/slots/", "slots", bad)[0] == 404
    assert answered(None, f"{MERCHANTS}{slotted.pk}/slots/", "slots", bad)[0] == 400
    assert answered(None, f"{MERCHANTS}{slotted.pk}/slots/", "slots", {})[0] == 400
    status, body = answered(hidden.owner, f"{MERCHANTS}{hidden.pk}/slots/", "slots", day)
    expected = serializers.SlotSerializer(
        merchant_day_slots(merchant=hidden, day=_tomorrow()), many=True
    ).data
    assert (status, body) == (200, drf(expected))
    assert body != b"[]"


def test_each_read_is_one_call_of_a_kept_plan(shops, slotted, django_assert_num_queries):
    """One statement a request, calling the function its plan is kept in; installed after
    `migrate` as the code gives it."""
    shop = shops["weekly"]
    reads = {
        "merchants_detail": f"{MERCHANTS}{shop.pk}/",
        "merchants_hours": f"{MERCHANTS}{shop.pk}/hours/",
        "merchants_day_slots": f"{MERCHANTS}{slotted.pk}/slots/?date={_tomorrow()}",
    }
    with connection.cursor() as cursor:
        for plan in KEPT_PLANS:
            assert installed_function_body(cursor, plan.name) == plan.body
    client = api_client_as(None)
    for function, path in reads.items():
        for _ in range(3):
            with django_assert_num_queries(1) as captured:
                assert client.get(path).status_code == 200
            assert f"FROM {function}(" in captured.captured_queries[0]["sql"]
    # The list's page and count, prepared (`test_merchant_reads`).
    with django_assert_num_queries(1):
        assert client.get(MERCHANTS, {"category": "x", "q": "y"}).status_code == 200


@pytest.mark.parametrize(
    ("kind", "sql_type", "values"),
    [
        (
            GEOJSON_POINT,
            "geography",
            [
                Point(13.0, 52.0, srid=4326),
                Point(-0.0, 0.0, srid=4326),
                Point(-180.0, -90.0, srid=4326),
                Point(13.404954123456789, 52.520008987654321, srid=4326),
                Point(1e-05, -0.00012, srid=4326),
                Point(179.99999999999997, 1.5, srid=4326),
            ],
        ),
        (
            CLOCK,
            "time",
            [time(h, m) for h, m in ((0, 0), (9, 5), (23, 59), (12, 30))],
        ),
    ],
    ids=["point", "clock"],
)
def test_each_new_kind_renders_in_sql_what_drf_renders(kind, sql_type, values):
    shape = Shape("Sample", (Field("value", kind),))
    for value in values:
        statement = f"SELECT {shape.json_sql(alias='r')} FROM (SELECT %(v)s::{sql_type} AS value) r"  # noqa: S608
        with connection.cursor() as cursor:
            cursor.execute(
                statement, {"v": value.hexewkb.decode() if sql_type == "geography" else value}
            )
            rendered = cursor.fetchone()[0]
        field = kind.field()
        assert rendered.encode() == drf({"value": field.to_representation(value)}), value


def test_the_shapes_declare_the_schemas_fields_in_order():
    assert list(serializers.MerchantOutputSerializer().fields) == MERCHANT_OUTPUT.names
    assert list(serializers.MerchantHoursSerializer().fields) == MERCHANT_HOURS.names
    assert list(serializers.SlotSerializer().fields) == SLOT.names
