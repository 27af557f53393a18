"""search/products on the ASGI event loop: the same bytes as Django, only for requests
Django would answer with a 200, and Django whenever anything is off."""

import random
from urllib.parse import urlencode

import pytest
from django.http import QueryDict

from catalog import search_route, selectors
from catalog.serializers import ProductSearchParamsSerializer
from geomarket.api.pagination import page_body, total_pages
from geomarket.lane import async_db
from tests import factories
from tests.search.served import closed_port, reprice, served

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("async_pool_closed"),
]

SEARCH = "/api/v1/search/products/"

TOKENS = {
    "q": ["bread", "milk", "oat milk", "", " bread", "a" * 200, "a" * 201, "bread OR rye"],
    "category": ["bakery", "3", "", " 3", "\u00b2"],
    "min_price": ["1", "1.5", "1.555", "-1", "", "abc"],
    "max_price": ["4", "10.00", "0.5", "", "x"],
    "merchant_id": ["1", "0", "-1", "x", ""],
    "in_stock": ["true", "false", "", "maybe", "null"],
    "sort": ["price", "-price", "newest", "relevance", "cheapest", ""],
    "page": ["1", "2", "3", "last", "0", "x", "", "007"],
    "page_size": ["1", "2", "20", "100", "101", "0", "x", ""],
}


def random_query(rng: random.Random) -> str:
    pairs = [(name, rng.choice(choices)) for name, choices in TOKENS.items() if rng.random() < 0.4]
    if rng.random() < 0.05 and pairs:
        pairs.append(rng.choice(pairs))
    rng.shuffle(pairs)
    return urlencode(pairs)


def test_the_parser_accepts_only_what_the_view_accepts_and_reads_it_the_same():
    rng = random.Random(5)
    taken = 0
    for _ in range(3000):
        query = random_query(rng)
        parsed = search_route.parse_query(query.encode())
        if parsed is None:
            continue
        taken += 1
        reference = ProductSearchParamsSerializer(data=QueryDict(query))
        assert reference.is_valid(), (query, reference.errors)
        assert parsed["filters"] == dict(reference.validated_data), query
        given = QueryDict(query)
        page, size = given.get("page") or "1", given.get("page_size") or "20"
        assert parsed["number"] == int(page), query
        assert parsed["size"] == min(int(size), 100), query
    assert taken > 200


@pytest.mark.parametrize(
    "query", ["page=last", "page=0", "page=x", "page_size=0", "q=a&q=b", "format=json"]
)
def test_what_only_the_paginator_or_drf_decides_is_left_to_django(query):
    assert search_route.parse_query(query.encode()) is None


@pytest.mark.parametrize("count", [0, 1, 19, 20, 21, 40, 41, 1001])
@pytest.mark.parametrize("size", [1, 7, 20, 100])
def test_pages_are_counted_as_djangos_paginator_counts_them(count, size):
    from django.core.paginator import Paginator

    assert total_pages(count, size) == Paginator(range(count), size).num_pages


@pytest.fixture
def catalog_rows():
    bakery = factories.category(name="Bakery")
    dairy = factories.category(name="Dairy")
    shop = factories.merchant(name="Corner Shop")
    other = factories.merchant(name="Other Shop")
    closed = factories.merchant(name="Closed Shop", is_active=False)
    made = []
    for number in range(25):
        item = factories.product(
            merchant=shop if number % 3 else other,
            category=bakery if number % 2 else dairy,
            title=f"{'Bread' if number % 2 else 'Milk'} number {number}",
            price=f"{1 + number * 0.37:.2f}",
            description='Baked "daily"\n\u2028 caf\u00e9' if number == 4 else "Fresh",
        )
        factories.stock(product=item, quantity=number % 4)
        made.append(item)
    factories.product(merchant=closed, category=bakery, title="Ghost Bread")
    return {"bakery": bakery, "products": made, "shop": shop}


def queries(rows) -> list[dict]:
    return [
        {},
        {"q": "bread"},
        {"q": "bread", "page": "2", "page_size": "5"},
        {"q": "bread", "page": "3", "page_size": "5"},
        {"q": "milk", "sort": "-price", "in_stock": "true"},
        {"category": str(rows["bakery"].id), "min_price": "2", "max_price": "6"},
        {
            "category": rows["bakery"].slug,
            "merchant_id": str(rows["shop"].id),
            "page": "2",
            "page_size": "3",
        },
        {"q": "nothing-like-it"},
        {"page_size": "100", "sort": "price"},
        {"q": "bread", "ignored": "x", "page": "1"},
    ]


async def test_answers_equal_djangos_byte_for_byte(catalog_rows, settings, django_entries):
    async with served() as client:
        await client.get(SEARCH, params={"q": "learn"})
        assert len(django_entries) == 1
        routed = [await client.get(SEARCH, params=query) for query in queries(catalog_rows)]
        assert len(django_entries) == 1
        settings.SEARCH_ROUTE = False
        settings.FRONT_CACHE_PATHS = frozenset()
        reference = [await client.get(SEARCH, params=query) for query in queries(catalog_rows)]
    assert len(django_entries) == 1 + len(reference)
    for ours, theirs in zip(routed, reference, strict=True):
        assert ours.status_code == theirs.status_code == 200
        assert ours.content == theirs.content
        assert dict(ours.headers) == dict(theirs.headers)
    second = routed[2].json()
    assert (second["count"], second["page"], second["total_pages"]) == (12, 2, 3)
    assert second["next"].endswith("page=3&page_size=5&q=bread")
    assert second["previous"].endswith("?page_size=5&q=bread")
    assert routed[3].json()["next"] is None


async def test_an_estimated_count_says_so_as_djangos_does(
    catalog_rows, settings, monkeypatch, django_entries
):
    monkeypatch.setattr(selectors, "SEARCH_COUNT_BOUND", 4)
    query = {"q": "bread", "page_size": "2"}
    async with served() as client:
        await client.get(SEARCH, params={"q": "learn"})
        routed = await client.get(SEARCH, params=query)
        settings.SEARCH_ROUTE = False
        settings.FRONT_CACHE_PATHS = frozenset()
        reference = await client.get(SEARCH, params=query)
    assert routed.content == reference.content
    assert routed.json()["count_is_estimate"] is True
    assert len(django_entries) == 2


async def test_a_page_past_the_end_and_bad_parameters_get_djangos_answer(
    catalog_rows, django_entries
):
    async with served() as client:
        await client.get(SEARCH, params={"q": "learn"})
        past = await client.get(SEARCH, params={"q": "bread", "page": "9"})
        last = await client.get(SEARCH, params={"q": "bread", "page": "last", "page_size": "5"})
        bad = await client.get(SEARCH, params={"sort": "cheapest"})
    assert past.status_code == 404
    assert last.status_code == 200
    assert last.json()["page"] == 3
    assert bad.status_code == 400
    assert "sort" in bad.json()
    assert len(django_entries) == 4


async def test_only_anonymous_requests_for_a_host_django_served_are_routed(
    catalog_rows, django_entries
):
    async with served() as client:
        first = await client.get(SEARCH, params={"q": "bread"})
        other_host = await client.get(
            SEARCH, params={"q": "milk"}, headers={"Host": "evil.example"}
        )
        forged = await client.get(
            SEARCH, params={"q": "rye"}, headers={"Authorization": "Token forged"}
        )
    assert first.status_code == 200
    assert other_host.status_code == 400
    assert forged.status_code == 401
    assert len(django_entries) == 3


async def test_a_routed_answer_is_cached_and_a_write_makes_it_unreachable(
    catalog_rows, django_entries
):
    from tests.search.served import in_thread

    query = {"q": "bread", "sort": "price", "page_size": "1"}
    cheapest = catalog_rows["products"][1]
    async with served() as client:
        await client.get(SEARCH, params={"q": "learn"})
        first = await client.get(SEARCH, params=query)
        again = await client.get(SEARCH, params=query)
        await in_thread(reprice, cheapest, "9.99")
        after = await client.get(SEARCH, params=query)
    assert [first.headers["x-cache"], again.headers["x-cache"]] == ["MISS", "HIT"]
    assert first.json()["results"][0]["id"] == cheapest.id
    assert after.headers["x-cache"] == "MISS"
    assert after.json()["results"][0]["id"] != cheapest.id
    assert len(django_entries) == 1


async def test_when_the_database_fails_django_answers(
    catalog_rows, settings, monkeypatch, django_entries
):
    unreachable = {**async_db._connection_kwargs(), "port": closed_port(), "connect_timeout": 1}
    monkeypatch.setattr(async_db, "_connection_kwargs", lambda alias="default": unreachable)
    monkeypatch.setattr(async_db, "_retry_at", 0.0)
    settings.DATABASE_CONNECT_TIMEOUT = 1
    async with served() as client:
        await client.get(SEARCH, params={"q": "learn"})
        failed_over = await client.get(SEARCH, params={"q": "milk"})
        next_one = await client.get(SEARCH, params={"q": "bread"})
    assert failed_over.status_code == next_one.status_code == 200
    assert failed_over.json()["count"] == 13
    assert len(django_entries) == 3


def test_the_page_shape_is_the_paginators():
    body = page_body(
        count=41, number=2, page_size=20, link_base="http://h/s/?page=2&q=x", results=[]
    )
    assert list(body) == [
        "count",
        "page",
        "page_size",
        "total_pages",
        "next",
        "previous",
        "results",
    ]
    assert (body["total_pages"], body["next"], body["previous"]) == (
        3,
        "http://h/s/?page=3&q=x",
        "http://h/s/?q=x",
    )
