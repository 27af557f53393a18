import pytest

from tests import factories

pytestmark = pytest.mark.django_db

SEARCH = "/api/v1/search/products/"
SUGGEST = "/api/v1/search/suggest/"
NEARBY = "/api/v1/products/nearby/"


@pytest.fixture
def shop_items():
    bakery = factories.category(name="Bakery")
    fruit = factories.category(name="Fruit")
    shop = factories.merchant()
    items = {
        "sourdough": factories.product(
            merchant=shop,
            category=bakery,
            title="Sourdough Loaf",
            price="4.50",
            description="Slow fermented bread",
        ),
        "rye": factories.product(
            merchant=shop,
            category=bakery,
            title="Rye Bread",
            price="3.20",
            description="Dark and dense",
        ),
        "apples": factories.product(
            merchant=shop,
            category=fruit,
            title="Apples 1kg",
            price="2.10",
            description="Crisp, from Brandenburg",
        ),
        "banana": factories.product(
            merchant=shop,
            category=fruit,
            title="Bananas",
            price="1.90",
            description="Ripe bread companions",
        ),
    }
    quantities = {"sourdough": 5, "rye": 0, "apples": 12, "banana": 3}
    for key, item in items.items():
        factories.stock(product=item, quantity=quantities[key])
    factories.product(merchant=shop, category=bakery, title="Secret Bread", is_published=False)
    closed = factories.merchant(is_active=False)
    factories.stock(
        product=factories.product(merchant=closed, category=bakery, title="Ghost Bread")
    )
    return shop, items


def ids(response):
    return [row["id"] for row in response.json()["results"]]


def test_full_text_search_ranks_title_over_description(api_client, shop_items):
    _shop, items = shop_items
    response = api_client.get(SEARCH, {"q": "bread"})
    assert response.status_code == 200
    found = ids(response)
    # title matches (weight A) outrank category (B) and description (C) matches
    assert found[0] == items["rye"].pk
    assert set(found) == {items["rye"].pk, items["sourdough"].pk, items["banana"].pk}


def test_search_matches_category_name_and_stems(api_client, shop_items):
    _shop, items = shop_items
    assert set(ids(api_client.get(SEARCH, {"q": "fruits"}))) == {
        items["apples"].pk,
        items["banana"].pk,
    }


def test_websearch_syntax(api_client, shop_items):
    _shop, items = shop_items
    assert ids(api_client.get(SEARCH, {"q": "bread -rye -banana"})) == [items["sourdough"].pk]
    assert ids(api_client.get(SEARCH, {"q": '"slow fermented"'})) == [items["sourdough"].pk]


def test_search_result_shape(api_client, shop_items):
    shop, items = shop_items
    row = api_client.get(SEARCH, {"q": "apples"}).json()["results"][0]
    assert row == {
        "id": items["apples"].pk,
        "title": "Apples 1kg",
        "description": "Crisp, from Brandenburg",
        "price": "2.10",
        "category": {"id": items["apples"].category_id, "name": "Fruit"},
        "merchant_id": shop.pk,
        "created_at": row["created_at"],
        "quantity": 12,
    }


def test_sorts_and_filters(api_client, shop_items):
    _shop, items = shop_items
    by_price = ids(api_client.get(SEARCH, {"sort": "price"}))
    assert by_price == [items[k].pk for k in ("banana", "apples", "rye", "sourdough")]
    assert ids(api_client.get(SEARCH, {"sort": "-price"})) == by_price[::-1]
    newest = ids(api_client.get(SEARCH, {"sort": "newest"}))
    assert newest == [items[k].pk for k in ("banana", "apples", "rye", "sourdough")]
    in_stock = ids(api_client.get(SEARCH, {"in_stock": "true", "sort": "price"}))
    assert items["rye"].pk not in in_stock
    assert len(in_stock) == 3
    ranged = ids(
        api_client.get(SEARCH, {"min_price": "2.00", "max_price": "4.00", "sort": "price"})
    )
    assert ranged == [items["apples"].pk, items["rye"].pk]
    assert set(ids(api_client.get(SEARCH, {"category": "fruit-x"}))) == set()


def test_search_is_paginated(api_client, shop_items):
    body = api_client.get(SEARCH, {"page_size": 3, "sort": "price"}).json()
    assert body["count"] == 4
    assert body["total_pages"] == 2
    assert len(body["results"]) == 3


@pytest.mark.parametrize(
    "params",
    [
        {"sort": "cheapest"},
        {"min_price": "-1"},
        {"min_price": "5", "max_price": "1"},
        {"merchant_id": "abc"},
        {"in_stock": "perhaps"},
    ],
)
def test_bad_search_parameters_are_400(api_client, params):
    response = api_client.get(SEARCH, params)
    assert response.status_code == 400
    assert response.json()


def test_sql_and_unicode_queries_are_just_text(api_client, shop_items):
    for q in ["'; DROP TABLE catalog_product; --", "Brötchen ünd 🍞", "a & | ! ( )", "\\"]:
        response = api_client.get(SEARCH, {"q": q})
        assert response.status_code == 200
    assert api_client.get(SEARCH, {"q": "bread"}).json()["count"] == 3


def test_suggest_prefix_first_then_substring(api_client):
    shop = factories.merchant()
    for title in ["Breadsticks", "Rye Bread", "bread rolls", "Shortbread", "Bread", "Bread"]:
        factories.product(merchant=shop, title=title)
    factories.product(merchant=shop, title="Bready Secret", is_published=False)
    body = api_client.get(SUGGEST, {"q": "BREAD"}).json()
    assert body["query"] == "BREAD"
    assert body["suggestions"] == ["Bread", "Breadsticks", "bread rolls", "Rye Bread", "Shortbread"]


def test_suggest_returns_at_most_ten_distinct_titles(api_client):
    shop = factories.merchant()
    for n in range(15):
        factories.product(merchant=shop, title=f"Tea {n:02d}")
        factories.product(merchant=shop, title=f"Green tea {n:02d}")
    suggestions = api_client.get(SUGGEST, {"q": "tea"}).json()["suggestions"]
    assert suggestions == [f"Tea {n:02d}" for n in range(10)]


def test_suggest_wildcards_are_literal(api_client):
    shop = factories.merchant()
    factories.product(merchant=shop, title="100% Juice")
    factories.product(merchant=shop, title="1000 Juices")
    assert api_client.get(SUGGEST, {"q": "100%"}).json()["suggestions"] == ["100% Juice"]


@pytest.mark.parametrize("q", ["", "ab", None])
def test_suggest_needs_three_characters(api_client, q):
    response = api_client.get(SUGGEST, {} if q is None else {"q": q})
    assert response.status_code == 400
    assert "q" in response.json()


def test_products_nearby_shape_and_filters(api_client, shop_items):
    shop, items = shop_items
    lat, lng = shop.location.y, shop.location.x
    body = api_client.get(NEARBY, {"lat": lat, "lng": lng}).json()
    assert [r["product"]["id"] for r in body["results"]] == [
        items[k].pk for k in ("sourdough", "apples", "banana")
    ]
    first = body["results"][0]
    assert first["merchant"] == {
        "id": shop.pk,
        "name": shop.name,
        "location": {"type": "Point", "coordinates": [lng, lat]},
    }
    assert first["distance_m"] == 0
    assert first["quantity"] == 5
    assert set(first["product"]) == {
        "id",
        "merchant_id",
        "category_id",
        "title",
        "description",
        "price",
        "is_published",
        "created_at",
        "updated_at",
    }
    every = api_client.get(NEARBY, {"lat": lat, "lng": lng, "in_stock": "false"}).json()
    assert len(every["results"]) == 4
    bread = api_client.get(NEARBY, {"lat": lat, "lng": lng, "q": "bread"}).json()
    assert [r["product"]["id"] for r in bread["results"]] == [
        items["sourdough"].pk,
        items["banana"].pk,
    ]
    cheap = api_client.get(NEARBY, {"lat": lat, "lng": lng, "max_price": "2.00"}).json()
    assert [r["product"]["id"] for r in cheap["results"]] == [items["banana"].pk]
    slug = items["apples"].category.slug
    fruit = api_client.get(NEARBY, {"lat": lat, "lng": lng, "category": slug}).json()
    assert [r["product"]["id"] for r in fruit["results"]] == [
        items["apples"].pk,
        items["banana"].pk,
    ]


LAT_LNG_CASES = [
    {},
    {"lat": "52.5"},
    {"lat": "abc", "lng": "13.4"},
    {"lat": "NaN", "lng": "13.4"},
    {"lat": "Infinity", "lng": "13.4"},
    {"lat": "1e308", "lng": "13.4"},
    {"lat": "91", "lng": "13.4"},
    {"lat": "52", "lng": "-181"},
    {"lat": "52", "lng": "13", "limit": "0"},
]
RADIUS_CASES = [
    {"lat": "52", "lng": "13", "radius": "0"},
    {"lat": "52", "lng": "13", "radius": "-5"},
    {"lat": "52", "lng": "13", "radius": "50001"},
    {"lat": "52", "lng": "13", "radius": "NaN"},
    {"lat": "52", "lng": "13", "limit": "101"},
]
BAD_GEO_PARAMS = (
    [
        (path, params)
        for path in (NEARBY, "/api/v1/merchants/nearby/", "/api/v1/merchants/delivering-to/")
        for params in LAT_LNG_CASES
    ]
    + [(path, params) for path in (NEARBY, "/api/v1/merchants/nearby/") for params in RADIUS_CASES]
    + [
        (NEARBY, {"lat": "52", "lng": "13", "min_price": "x"}),
        (NEARBY, {"lat": "52", "lng": "13", "min_price": "3", "max_price": "1"}),
        (NEARBY, {"lat": "52", "lng": "13", "in_stock": "sometimes"}),
    ]
)


@pytest.mark.parametrize(("path", "params"), BAD_GEO_PARAMS)
def test_bad_geo_parameters_are_field_errors(api_client, path, params):
    response = api_client.get(path, params)
    assert response.status_code == 400
    body = response.json()
    assert body
    assert set(body) <= {"lat", "lng", "radius", "limit", "min_price", "in_stock"}


def test_without_q_the_default_sort_is_newest_as_the_schema_says(api_client, client, shop_items):
    newest = ids(api_client.get(SEARCH, {"sort": "newest"}))
    assert ids(api_client.get(SEARCH)) == newest
    assert ids(api_client.get(SEARCH, {"sort": "relevance"})) == newest
    schema = client.get("/api/schema/?format=json").json()
    parameters = {p["name"]: p for p in schema["paths"][SEARCH]["get"]["parameters"]}
    assert "`newest` without" in parameters["sort"]["description"]
    assert "false or absent: all" in parameters["in_stock"]["description"]
