"""A merchant's hours, closures, slot plan, slots and zones are read with the merchant's
narrow row (`merchant_ref`) and rendered by functions, not serializers built per request:
each answer must stay what its schema's serializer renders of the same rows."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.db.backends.postgresql.psycopg_any import DateTimeTZRange
from django.utils import timezone

from merchants import serializers
from merchants.models import Closure, DeliveryZone, OpeningInterval, SlotPlan
from merchants.selectors import MERCHANT_DAY_SLOTS_PLAN, MERCHANT_HOURS_PLAN, merchant_day_slots
from merchants.services import slot_plan_set
from tests import factories
from tests.market import api_client_as

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop():
    shop = factories.merchant()
    # Open every day, so that tomorrow has slots whatever day the test runs.
    factories.hours(
        shop,
        (0, "08:00", "12:30"),
        *((weekday, "06:00", "23:45") for weekday in range(1, 5)),
        (5, "22:00", "02:00"),
        (6, "03:00", "23:45"),
    )
    factories.closure(shop, "2031-01-02T10:00:00+00:00", "2031-01-03T00:00:00.250000+00:00", "Inv")
    factories.closure(shop, "2030-12-24T13:00:00+01:00", "2030-12-27T00:00:00+01:00", "Xmas")
    # A closure with no end: the contract renders it as null.
    Closure.objects.create(
        merchant=shop, period=DateTimeTZRange(datetime(2032, 1, 1, tzinfo=UTC), None), reason=""
    )
    slot_plan_set(merchant=shop, slot_minutes=45, capacity=3, lead_minutes=0, horizon_days=2)
    factories.zone(merchant=shop, fee="2.50", min_order="0.00")
    factories.zone(merchant=shop, fee="12.05", min_order="7.10", is_active=False)
    return shop


def url(shop, tail: str = "") -> str:
    return f"/api/v1/merchants/{shop.pk}/{tail}"


def same_json(answer, expected) -> None:
    # Field order too: clients diff answers.
    assert json.dumps(answer) == json.dumps(expected)


def results(client, path: str) -> list:
    answer = client.get(path, {"page_size": 100})
    assert answer.status_code == 200, answer.content
    return answer.json()["results"]


def test_each_answer_is_what_its_serializer_renders(shop):
    anonymous, owner = api_client_as(None), api_client_as(shop.owner)
    weekly = OpeningInterval.objects.filter(merchant=shop).order_by("weekday", "opens")
    same_json(
        anonymous.get(url(shop, "hours/")).json(),
        serializers.MerchantHoursSerializer(
            {"timezone": shop.timezone, "weekly": weekly.values("weekday", "opens", "closes")}
        ).data,
    )
    closures = Closure.objects.filter(merchant=shop).order_by("period", "id")
    same_json(
        results(anonymous, url(shop, "closures/")),
        serializers.ClosureSerializer(closures, many=True).data,
    )
    same_json(
        anonymous.get(url(shop, "slot-plan/")).json(),
        serializers.SlotPlanSerializer(SlotPlan.objects.get(merchant=shop)).data,
    )
    day = (timezone.now() + timedelta(days=1)).date()
    slots = merchant_day_slots(merchant=shop, day=day)
    assert slots
    same_json(
        anonymous.get(url(shop, "slots/"), {"date": str(day)}).json(),
        serializers.SlotSerializer(slots, many=True).data,
    )
    zones = DeliveryZone.objects.filter(merchant=shop).order_by("id")
    same_json(
        results(anonymous, url(shop, "delivery-zones/")),
        serializers.DeliveryZoneOutputSerializer(zones.filter(is_active=True), many=True).data,
    )
    same_json(
        results(owner, url(shop, "delivery-zones/")),
        serializers.DeliveryZoneOutputSerializer(zones, many=True).data,
    )
    for zone in zones:
        same_json(
            owner.get(url(shop, f"delivery-zones/{zone.pk}/")).json(),
            serializers.DeliveryZoneOutputSerializer(zone).data,
        )


@pytest.mark.parametrize("tail", ["closures/", "slot-plan/", "delivery-zones/"])
def test_the_merchant_is_read_beside_the_answer_without_its_address_categories_or_open_period(
    shop, tail, django_assert_num_queries
):
    """One statement: the caller is judged on the merchant's row, read with the answer."""
    with django_assert_num_queries(1) as captured:
        assert api_client_as(None).get(url(shop, tail)).status_code == 200
    read = captured.captured_queries[0]["sql"]
    assert "merchants_merchant" in read
    _reads_the_merchant_alone(read)


@pytest.mark.parametrize(
    ("tail", "query", "plan"),
    [
        ("hours/", {}, MERCHANT_HOURS_PLAN),
        ("slots/", {"date": "2030-01-01"}, MERCHANT_DAY_SLOTS_PLAN),
    ],
)
def test_hours_and_slots_are_read_with_the_merchant_by_one_statement(
    shop, tail, query, plan, django_assert_num_queries
):
    """The merchant's row is read beside the answer, which its kept plan renders."""
    with django_assert_num_queries(1) as captured:
        assert api_client_as(None).get(url(shop, tail), query).status_code == 200
    assert f"FROM {plan.name}(" in captured.captured_queries[0]["sql"]
    _reads_the_merchant_alone(plan.statement)


@pytest.mark.parametrize("tail", ["closures/", "delivery-zones/"])
def test_pages_answer_the_merchant_before_the_page(shop, tail):
    hidden = factories.merchant(is_active=False)
    factories.zone(merchant=hidden)
    factories.closure(hidden, "2031-01-02T10:00:00+00:00", "2031-01-03T00:00:00+00:00")
    anonymous = api_client_as(None)
    for merchant, status in ((hidden, 404), (shop, 400)):
        answer = anonymous.get(url(merchant, tail), {"page_size": "x"})
        assert answer.status_code == status
    assert anonymous.get(url(hidden, tail)).status_code == 404
    owner = api_client_as(hidden.owner)
    assert len(results(owner, url(hidden, tail))) == 1
    # The count of an empty page, past the end: its 404.
    assert anonymous.get(url(shop, tail), {"page": 9}).status_code == 404


def test_a_slot_plan_is_the_merchants_before_it_is_missing(shop):
    hidden = factories.merchant(is_active=False)
    anonymous = api_client_as(None)
    assert anonymous.get(url(hidden, "slot-plan/")).json() == {"detail": "Not found."}
    missing = api_client_as(hidden.owner).get(url(hidden, "slot-plan/"))
    assert (missing.status_code, missing.json()) == (
        404,
        {"detail": "This merchant has no slot plan.", "code": "not_found"},
    )
    slot_plan_set(merchant=hidden, slot_minutes=30, capacity=2, lead_minutes=5, horizon_days=4)
    assert api_client_as(hidden.owner).get(url(hidden, "slot-plan/")).json() == {
        "slot_minutes": 30,
        "capacity": 2,
        "lead_minutes": 5,
        "horizon_days": 4,
    }
    assert anonymous.get(url(hidden, "slot-plan/")).status_code == 404


def _reads_the_merchant_alone(merchant_read: str) -> None:
    assert "merchants_merchant" in merchant_read
    for unneeded in ("merchants_address", "merchants_merchant_categories", "open_bounds"):
        assert unneeded not in merchant_read


def test_a_page_past_the_end_is_not_found_and_the_last_page_is_found(shop):
    client = api_client_as(None)
    assert client.get(url(shop, "closures/"), {"page": 4, "page_size": 1}).status_code == 404
    last = client.get(url(shop, "closures/"), {"page": "last", "page_size": 2}).json()
    assert (last["count"], last["page"], len(last["results"])) == (3, 2, 1)
