"""Operators' small reports on the ASGI event loop: the same answers as Django, only for
requests Django would answer with a 200, and Django whenever anything is off."""

import random
from datetime import date, timedelta
from urllib.parse import urlencode

import pytest
from django.http import QueryDict
from django.utils import timezone

from analytics import route
from analytics.serializers import RevenueParamsSerializer, TopProductsParamsSerializer
from geomarket.lane import async_db
from tests import factories
from tests.search.served import closed_port, in_thread, served

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("async_pool_closed"),
]

REVENUE = "/api/v1/analytics/revenue/"
TOP = "/api/v1/analytics/top-products/"
MARCH = {"date_from": "2026-03-01", "date_to": "2026-03-31"}

TOKENS = {
    "date_from": [
        "2026-03-01",
        "2026-03-10",
        "2026-3-1",
        "20260301",
        "",
        "2026-02-30",
        "x",
        "1969-12-31",
        "9999-12-31",
    ],
    "date_to": [
        "2026-03-31",
        "2026-03-05",
        "2016-01-01",
        "2026-03-31T00:00",
        " 2026-03-31",
        "0001-01-05",
        "1970-01-01",
    ],
    "merchant_id": [
        "1",
        "7",
        "2147483647",
        "2147483648",
        "0",
        "-1",
        "07",
        "1.0",
        "",
        "x",
        "\u00b2",
        "\u0663",
        "\uff17",
    ],
    "interval": ["day", "week", "month", "year", "Day", ""],
    "top": ["5", "1", "100", "101", "0", "5.0", " 5", "x", "\u0663", "\u2462"],
    "format": ["json", "csv"],
    "page": ["2"],
}


def random_query(rng: random.Random) -> str:
    pairs = [(name, rng.choice(values)) for name, values in TOKENS.items() if rng.random() < 0.5]
    if rng.random() < 0.05 and pairs:
        pairs.append(rng.choice(pairs))
    rng.shuffle(pairs)
    return urlencode(pairs)


def agrees_with_the_serializer(parse, serializer_class, query: str) -> bool:
    """Whether the route takes `query`; when it does, it must read it as DRF does."""
    parsed = parse(query.encode())
    if parsed is None:
        return False
    reference = serializer_class(data=QueryDict(query))
    assert reference.is_valid(), (query, reference.errors)
    expected = {name: reference.validated_data.get(name) for name in parsed if name != "range_"}
    assert {name: value for name, value in parsed.items() if name != "range_"} == expected
    assert parsed["range_"] == reference.validated_data["range_"], query
    return True


def test_the_parsers_accept_only_what_the_serializers_accept_and_read_it_the_same():
    rng = random.Random(5)
    taken = {"revenue": 0, "top": 0}
    for _ in range(4000):
        query = random_query(rng)
        taken["revenue"] += agrees_with_the_serializer(
            route.parse_revenue, RevenueParamsSerializer, query
        )
        taken["top"] += agrees_with_the_serializer(
            route.parse_top_products, TopProductsParamsSerializer, query
        )
    assert min(taken.values()) > 50


@pytest.mark.parametrize(
    "query",
    [
        "date_from=2026-03-01&date_from=2026-03-02",
        "date_from=2026-03-01&format=json",
        "date_from=2026-03-01&interval=%FF",
        "merchant_id=%EF%BC%97",  # a full-width 7, which int() would read
        "merchant_id=%D9%A3",  # an Arabic-Indic 3, the same
        "merchant_id=%C2%B2",  # a superscript 2: isdigit(), yet no int
        "&".join(f"x{n}=1" for n in range(30)),
    ],
)
def test_odd_queries_are_left_to_django(query):
    assert route.parse_revenue(query.encode()) is None


def test_top_products_of_every_merchant_are_left_to_django():
    assert route.parse_top_products(urlencode(MARCH).encode()) is None
    assert route.parse_top_products(urlencode({**MARCH, "merchant_id": 3}).encode()) is not None


def test_default_dates_are_the_last_thirty_days():
    parsed = route.parse_revenue(b"")
    today = timezone.now().date()
    assert (parsed["range_"].date_from, parsed["range_"].date_to) == (
        today - timedelta(days=29),
        today,
    )


def test_a_default_start_is_no_earlier_than_a_given_one_may_be():
    # 30 days up to 1970-01-05 would start in 1969, which date_from may not name.
    parsed = route.parse_revenue(b"date_to=1970-01-05")
    assert (parsed["range_"].date_from, parsed["range_"].date_to) == (
        date(1970, 1, 1),
        date(1970, 1, 5),
    )
    assert route.parse_revenue(b"date_from=1969-12-31&date_to=1970-01-05") is None


def token_headers(user) -> dict:
    return {"Authorization": f"Token {user.auth_token.key}"}


def queries(history) -> list[tuple[str, dict]]:
    shop = history["shops"][1].pk
    return [
        (REVENUE, MARCH),
        (REVENUE, {**MARCH, "interval": "week"}),
        (REVENUE, {**MARCH, "interval": "month", "merchant_id": shop}),
        (REVENUE, {"date_from": "2026-03-09", "date_to": "2026-03-13", "merchant_id": shop}),
        (REVENUE, {"date_from": "2026-03-05"}),
        (REVENUE, {}),
        (TOP, {**MARCH, "merchant_id": shop}),
        (TOP, {**MARCH, "merchant_id": shop, "top": 1}),
        (TOP, {**MARCH, "merchant_id": 999_999}),
    ]


async def test_answers_equal_djangos_byte_for_byte(
    history, operator_user, settings, django_entries
):
    headers = token_headers(operator_user)
    async with served() as client:
        await client.get(REVENUE, params=MARCH, headers=headers)
        await client.get(TOP, params={**MARCH, "merchant_id": 1}, headers=headers)
        assert len(django_entries) == 2
        routed = [
            await client.get(path, params=params, headers=headers)
            for path, params in queries(history)
        ]
        assert len(django_entries) == 2
        settings.ANALYTICS_ROUTE = False
        reference = [
            await client.get(path, params=params, headers=headers)
            for path, params in queries(history)
        ]
    assert len(django_entries) == 2 + len(reference)
    for ours, theirs in zip(routed, reference, strict=True):
        assert ours.status_code == theirs.status_code == 200
        assert ours.content == theirs.content
        assert dict(ours.headers) == dict(theirs.headers)
    assert len(routed[0].json()) == 31
    assert [row["rank"] for row in routed[7].json()] == [1] * len(routed[7].json())
    assert routed[8].json() == []


async def test_only_operators_tokens_are_routed(history, operator_user, django_entries):
    customer = await in_thread(factories.user)
    retired = await in_thread(factories.user, is_staff=True)
    retired.is_active = False
    await in_thread(retired.save, update_fields=["is_active"])
    operator = token_headers(operator_user)
    async with served() as client:
        learned = await client.get(REVENUE, params=MARCH, headers=operator)
        answers = {
            "customer": await client.get(REVENUE, params=MARCH, headers=token_headers(customer)),
            "inactive": await client.get(REVENUE, params=MARCH, headers=token_headers(retired)),
            "unknown": await client.get(
                REVENUE, params=MARCH, headers={"Authorization": "Token " + "0" * 40}
            ),
            "anonymous": await client.get(REVENUE, params=MARCH),
            "with a cookie": await client.get(
                REVENUE, params=MARCH, headers={**operator, "Cookie": "sessionid=x"}
            ),
            "csv": await client.get(REVENUE, params={**MARCH, "format": "csv"}, headers=operator),
            "csv by accept": await client.get(
                REVENUE, params=MARCH, headers={**operator, "Accept": "text/csv"}
            ),
        }
        routed = await client.get(REVENUE, params=MARCH, headers=operator)
    assert learned.status_code == routed.status_code == 200
    assert {name: answer.status_code for name, answer in answers.items()} == {
        "customer": 403,
        "inactive": 401,
        "unknown": 401,
        "anonymous": 401,
        "with a cookie": 200,
        "csv": 200,
        "csv by accept": 200,
    }
    assert answers["csv"].headers["content-type"].startswith("text/csv")
    assert answers["csv by accept"].headers["content-type"].startswith("text/csv")
    assert answers["with a cookie"].content == routed.content
    # Every one of them went to Django; only the last operator request did not.
    assert len(django_entries) == 1 + len(answers)


async def test_a_revoked_token_or_role_takes_effect_at_once(history, operator_user, django_entries):
    headers = token_headers(operator_user)
    async with served() as client:
        await client.get(REVENUE, params=MARCH, headers=headers)
        routed = await client.get(REVENUE, params=MARCH, headers=headers)
        operator_user.is_staff = False
        await in_thread(operator_user.save, update_fields=["is_staff"])
        demoted = await client.get(REVENUE, params=MARCH, headers=headers)
        await in_thread(operator_user.auth_token.delete)
        revoked = await client.get(REVENUE, params=MARCH, headers=headers)
    assert routed.status_code == 200
    assert demoted.status_code == 403
    assert revoked.status_code == 401
    assert len(django_entries) == 3


async def test_bad_or_unusual_parameters_get_djangos_answer(history, operator_user, django_entries):
    headers = token_headers(operator_user)
    shop = history["shops"][0].pk
    async with served() as client:
        await client.get(TOP, params={**MARCH, "merchant_id": shop}, headers=headers)
        backwards = await client.get(
            REVENUE, params={"date_from": "2026-03-31", "date_to": "2026-03-01"}, headers=headers
        )
        bad_interval = await client.get(
            REVENUE, params={**MARCH, "interval": "year"}, headers=headers
        )
        unusual = await client.get(
            TOP, params={**MARCH, "merchant_id": shop, "format": "json"}, headers=headers
        )
        usual = await client.get(TOP, params={**MARCH, "merchant_id": shop}, headers=headers)
    assert backwards.status_code == bad_interval.status_code == 400
    assert "date_from" in backwards.json()
    assert "interval" in bad_interval.json()
    assert unusual.status_code == 200
    assert unusual.content == usual.content
    assert len(django_entries) == 4


async def test_when_the_database_fails_django_answers(
    history, operator_user, settings, monkeypatch, django_entries
):
    unreachable = {**async_db._connection_kwargs(), "port": closed_port(), "connect_timeout": 1}
    monkeypatch.setattr(async_db, "_connection_kwargs", lambda alias="default": unreachable)
    monkeypatch.setattr(async_db, "_retry_at", 0.0)
    settings.DATABASE_CONNECT_TIMEOUT = 1
    headers = token_headers(operator_user)
    async with served() as client:
        first = await client.get(REVENUE, params=MARCH, headers=headers)
        failed_over = await client.get(REVENUE, params=MARCH, headers=headers)
    assert failed_over.status_code == 200
    assert failed_over.content == first.content
    assert len(django_entries) == 2
    assert async_db.resting()
