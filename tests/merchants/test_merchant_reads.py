"""The public merchant list and a merchant's detail are read by fixed statements (the
list's filters compiled once, `CompiledQuery`) and rendered by PostgreSQL
(`MERCHANT_OUTPUT`): each must answer what `MerchantOutputSerializer` renders of the same
merchant."""

import json

import pytest
from django.db import connection

from merchants import serializers
from merchants.selectors import merchant_visible
from tests import factories
from tests.market import api_client_as

pytestmark = pytest.mark.django_db

MERCHANTS = "/api/v1/merchants/"


def serialized(merchant_id: int, user=None) -> dict:
    merchant = merchant_visible(user=user, merchant_id=merchant_id)
    return serializers.MerchantOutputSerializer(merchant).data


def same_json(answer, expected) -> None:
    # Field order too: clients diff answers.
    assert json.dumps(answer) == json.dumps(expected)


def test_list_and_detail_answer_what_the_serializer_renders():
    fruit, bread = factories.category(), factories.category()
    always = factories.merchant(name="Always Open", categories=[bread, fruit])
    # Open on one weekday only: closed now on most days, with its next opening shown.
    weekly = factories.merchant(name="Weekly", lat=52.5, lng=13.3)
    factories.hours(weekly, (2, "09:30", "10:00"), timezone="America/New_York")
    hidden = factories.merchant(name="Hidden", is_active=False)
    client = api_client_as(None)

    listed = client.get(MERCHANTS).json()["results"]
    same_json(listed, [serialized(always.pk), serialized(weekly.pk)])
    for shop in (always, weekly):
        same_json(client.get(f"{MERCHANTS}{shop.pk}/").json(), serialized(shop.pk))
    same_json(
        api_client_as(hidden.owner).get(f"{MERCHANTS}{hidden.pk}/").json(),
        serialized(hidden.pk, hidden.owner),
    )
    assert client.get(f"{MERCHANTS}{hidden.pk}/").status_code == 404


def names(**query) -> list[str]:
    answer = api_client_as(None).get(MERCHANTS, query)
    assert answer.status_code == 200, answer.content
    return [merchant["name"] for merchant in answer.json()["results"]]


def test_the_compiled_list_takes_each_calls_filters():
    fruit, bread = factories.category(), factories.category()
    for name, categories in [
        ("50% off", [fruit]),
        ("500 off", [bread]),
        ("a_b", [fruit, bread]),
        ("axb", []),
    ]:
        factories.merchant(name=name, categories=categories)
    assert names(category=fruit.pk) == ["50% off", "a_b"]
    assert names(category=bread.pk) == ["500 off", "a_b"]
    assert names(category=bread.slug) == ["500 off", "a_b"]
    assert names(category=fruit.slug, q="B") == ["a_b"]
    # `%` and `_` in the name's filter are themselves, as `icontains` takes them.
    assert names(q="0%") == ["50% off"]
    assert names(q="a_b") == ["a_b"]
    assert names(q="X") == ["axb"]
    assert names(category=bread.pk, q="zzz") == []


def test_a_merchants_detail_is_a_prepared_call_of_a_kept_plan_answering_the_same():
    """Planned once per session: PostgreSQL planned it in three times its run (bench
    city). The prepared runs answer what the serializer renders, as the first did."""
    shops = [factories.merchant(name=name) for name in ("Prepared", "Twice")]
    factories.hours(shops[1], (2, "09:30", "10:00"), timezone="America/New_York")
    client = api_client_as(None)
    for _ in range(3):
        for shop in shops:
            same_json(client.get(f"{MERCHANTS}{shop.pk}/").json(), serialized(shop.pk))
    prepared = [text for text in _prepared() if "FROM merchants_detail(" in text]
    assert len(prepared) == 1, prepared


def _prepared() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements WHERE NOT from_sql")
        return [text for (text,) in cursor.fetchall()]


def test_the_list_a_merchants_zones_and_its_days_slots_are_prepared_statements():
    """Each planned once per connection: a page of a few rows took PostgreSQL longer to
    plan than to run. The prepared runs answer as the first did."""
    shop = factories.merchant(name="Zoned")
    factories.zone(merchant=shop)
    client = api_client_as(None)
    paths = (
        MERCHANTS,
        f"{MERCHANTS}?q=zon",
        f"{MERCHANTS}{shop.pk}/delivery-zones/",
        f"{MERCHANTS}{shop.pk}/slots/?date=2030-01-02",
    )
    first = [client.get(path).content for path in paths]
    for _ in range(2):
        assert [client.get(path).content for path in paths] == first
    prepared = _prepared()
    # Unfiltered, the list is its kept plan's call; filtered, its own statement.
    parts = ("merchants_list(", "ORDER BY r.name, r.id", "FROM merchants_deliveryzone")
    for part in (*parts, "merchants_day_slots("):
        assert len([text for text in prepared if part in text]) >= 1, (part, prepared)
    # The zones' page is read beside the merchant the caller is judged on.
    assert [text for text in prepared if "AS merchant_active" in text]
