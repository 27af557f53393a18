"""The products/nearby route on the ASGI event loop: the same answers as Django, only for
requests Django would answer with a 200, and Django whenever anything is off."""

import random
from urllib.parse import urlencode

import pytest
from asgiref.sync import sync_to_async
from django.db import connections
from django.http import QueryDict

from catalog import nearby_route
from catalog.serializers import ProductsNearbyParamsSerializer
from geomarket.lane import async_db
from tests import factories
from tests.search.served import closed_port, reprice, served

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("async_pool_closed"),
]

NEARBY = "/api/v1/products/nearby/"

# Plain spellings, in range and out of it: the route must decide these exactly as DRF.
PLAIN_TOKENS = {
    "lat": ["52.52", "-33.9", "90", "90.0001", "-90", "-0"],
    "lng": ["13.405", "-180", "0", "180.5", "13.4"],
    "radius": ["3000", "0", "50000", "50000.5", "0.5", "100.25"],
    "limit": ["20", "1", "100", "0", "101", "007", "\u00b2", "\u0663", "\uff13", "\u2462"],
    "q": ["milk", "oat milk", "caf\u00e9", "bread OR milk", "a" * 200, "a" * 201],
    "category": ["3", "bakery", "x" * 100, "x" * 101, "\u00b2", "\u0663", "\uff13", "\u2462"],
    "min_price": ["1", "1.5", "1.55", "1.555", "99999999.99", "0", "123456789.00"],
    "max_price": ["2", "0.5", "10.00", "3", "100000000"],
    "in_stock": ["true", "false", "True", "1", "0", "yes", "OFF", "maybe"],
    "deliverable": ["true", "false", "on", "n", "2"],
    "page": ["1"],
}
# Odd spellings besides: blanks, spaces, exponents, signs, NaN, other scripts' digits, NUL.
TOKENS = {
    "lat": [
        "52.52",
        "-33.9",
        "90",
        "90.0001",
        "-90",
        "abc",
        "",
        " 52.5",
        "1e1",
        "52.5 ",
        "nan",
        "inf",
        "52,5",
        "\uff15\uff12",
        "52.5200000000000000001",
        "-0",
        "1_0",
    ],
    "lng": ["13.405", "-180", "180.5", "0", "x", "", "13.4", "+13.4", "1E2"],
    "radius": ["3000", "0", "50000", "50000.5", "-1", "abc", "", "1e3", "0.5", "100.25"],
    "limit": ["20", "1", "100", "0", "101", "5.0", "x", "", "007", "-3", "\u0663", "\u00b2"],
    "q": [
        "milk",
        " milk",
        "milk ",
        "",
        "a" * 201,
        "a" * 200,
        "oat milk",
        "\x00milk",
        "caf\u00e9",
        "bread OR milk",
    ],
    "category": ["3", "bakery", "", "x" * 101, "x" * 100, " bakery", "\u00b2", "\uff13", " 3"],
    "min_price": [
        "1",
        "1.5",
        "1.55",
        "1.555",
        "-1",
        "abc",
        "",
        "99999999.99",
        "1e2",
        "NaN",
        "123456789.00",
        "0",
    ],
    "max_price": ["2", "0.5", "10.00", "", "x", "100000000", "3"],
    "in_stock": ["true", "false", "True", "1", "0", "yes", "OFF", "maybe", "", "null"],
    "deliverable": ["true", "false", "on", "n", "", "2"],
    "page": ["1", "x"],
}


def random_query(rng: random.Random, tokens: dict[str, list[str]], *, repeats: bool) -> str:
    # Mostly a valid point, so that the other parameters decide.
    pairs = [
        (name, rng.choice(tokens[name][:3] if rng.random() < 0.7 else tokens[name]))
        for name in ("lat", "lng")
    ]
    for name, choices in tokens.items():
        if name not in ("lat", "lng") and rng.random() < 0.35:
            pairs.append((name, rng.choice(choices)))
    if repeats and rng.random() < 0.05:
        pairs.append(rng.choice(pairs))
    rng.shuffle(pairs)
    return urlencode(pairs)


def agrees_with_the_serializer(query: str) -> bool:
    """Whether the route takes `query`; when it does, it must read it as DRF does."""
    parsed = nearby_route.parse_query(query.encode())
    if parsed is None:
        return False
    reference = ProductsNearbyParamsSerializer(data=QueryDict(query))
    assert reference.is_valid(), (query, reference.errors)
    assert parsed == dict(reference.validated_data), query
    assert {name: type(value) for name, value in parsed.items() if name != "radius"} == {
        name: type(value) for name, value in reference.validated_data.items() if name != "radius"
    }, query
    return True


def test_the_parser_accepts_only_what_the_serializer_accepts_and_reads_it_the_same():
    rng = random.Random(7)
    for _ in range(5000):
        agrees_with_the_serializer(random_query(rng, TOKENS, repeats=True))


def test_plainly_spelled_queries_are_decided_exactly_as_the_serializer_decides():
    rng = random.Random(11)
    valid = 0
    for _ in range(3000):
        query = random_query(rng, PLAIN_TOKENS, repeats=False)
        reference_valid = ProductsNearbyParamsSerializer(data=QueryDict(query)).is_valid()
        assert agrees_with_the_serializer(query) == reference_valid, query
        valid += reference_valid
    assert valid > 300


@pytest.mark.parametrize(
    "query",
    [
        "lat=52.5&lng=13.4&q=%ED%A0%80",
        "lat=52.5&lng=13.4&q=%FF",
        "lat=52.5&lng=13.4&q=milk%00",
        "lat=52.5&lng=13.4;limit=5",
        "lat=52.5&lng=13.4&limit=%D9%A3",  # an Arabic-Indic 3, which int() would read
        "lat=52.5&lng=13.4&limit=%EF%BC%93",  # a full-width 3, which \d would match
        "lat=52.5&lng=13.4&category=%C2%B2",  # a superscript 2: isdigit(), yet no int
        "lat=52.5&lng=13.4&category=%D9%A3",
        "lat=%D9%A5%D9%A2&lng=13.4",
        "lat=52.5&lng=13.4&q=oat+milk&q=rye",
        "lat=52.5&lng=13.4&lat=10",
        "&".join(["lat=52.5&lng=13.4", *(f"x{n}=1" for n in range(30))]),
    ],
)
def test_odd_encodings_are_left_to_django(query):
    assert not agrees_with_the_serializer(query)


@pytest.mark.parametrize(
    "query",
    [
        "lat=52.520000&lng=13.405000&radius=3000&limit=20",
        "lat=52.52&lng=13.405",
        "lat=-33.9&lng=151.2&q=oat+milk&category=bakery&min_price=1.5&max_price=10"
        "&in_stock=false&deliverable=true",
    ],
)
def test_the_queries_customer_apps_send_are_taken(query):
    assert nearby_route.parse_query(query.encode()) is not None


@pytest.fixture
def city():
    bakery = factories.category(name="Bakery")
    dairy = factories.category(name="Dairy")
    lat, lng = factories.BERLIN
    near = factories.merchant(name="Near Shop", lat=lat + 0.001, lng=lng)
    far = factories.merchant(name="Far Shop", lat=lat + 0.02, lng=lng + 0.01)
    closed = factories.merchant(name="Closed Shop", lat=lat, lng=lng, is_active=False)
    factories.zone(merchant=near)
    made = []
    for shop, title, category, price, quantity in [
        (near, "Sourdough Bread", bakery, "4.50", 5),
        (near, "Rye Bread", bakery, "3.20", 0),
        (near, "Oat Milk", dairy, "1.80", 7),
        (far, "Whole Milk", dairy, "1.10", 3),
        (far, "Bread Rolls", bakery, "0.60", 40),
        (closed, "Ghost Bread", bakery, "2.00", 9),
    ]:
        item = factories.product(merchant=shop, category=category, title=title, price=price)
        factories.stock(product=item, quantity=quantity)
        made.append(item)
    factories.product(merchant=near, category=bakery, title="Hidden Bread", is_published=False)
    return {"lat": lat, "lng": lng, "bakery": bakery, "products": made}


def queries(city) -> list[dict]:
    point = {"lat": city["lat"], "lng": city["lng"]}
    return [
        point,
        {**point, "radius": "500"},
        {**point, "q": "bread"},
        {**point, "category": str(city["bakery"].id)},
        {**point, "category": "category-unknown"},
        {**point, "min_price": "1", "max_price": "4"},
        {**point, "in_stock": "false"},
        {**point, "deliverable": "true"},
        {**point, "limit": "2", "radius": "50000"},
    ]


async def test_answers_equal_djangos_byte_for_byte(city, settings, django_entries):
    async with served() as client:
        await client.get(NEARBY, params={"lat": 0, "lng": 0})
        assert len(django_entries) == 1
        routed = [await client.get(NEARBY, params=query) for query in queries(city)]
        assert len(django_entries) == 1
        settings.NEARBY_ROUTE = False
        settings.FRONT_CACHE_PATHS = frozenset()
        reference = [await client.get(NEARBY, params=query) for query in queries(city)]
    assert len(django_entries) == 1 + len(reference)
    for ours, theirs in zip(routed, reference, strict=True):
        assert ours.status_code == theirs.status_code == 200
        assert ours.content == theirs.content
        assert dict(ours.headers) == dict(theirs.headers)
    titles = [row["product"]["title"] for row in routed[2].json()["results"]]
    assert titles == ["Sourdough Bread", "Bread Rolls"]
    assert [row["product"]["title"] for row in routed[7].json()["results"]] == [
        "Sourdough Bread",
        "Oat Milk",
    ]


async def test_bad_or_unusual_parameters_get_djangos_answer(city, django_entries):
    point = {"lat": city["lat"], "lng": city["lng"]}
    async with served() as client:
        await client.get(NEARBY, params=point)
        bad = await client.get(NEARBY, params={**point, "radius": "-5"})
        unusual = await client.get(NEARBY, params={**point, "radius": "5e3"})
    assert bad.status_code == 400
    assert "radius" in bad.json()
    assert unusual.status_code == 200
    assert len(unusual.json()["results"]) == 4
    assert len(django_entries) == 3


async def test_only_anonymous_requests_for_a_host_django_served_are_routed(city, django_entries):
    point = {"lat": city["lat"], "lng": city["lng"]}
    async with served() as client:
        first = await client.get(NEARBY, params=point)
        forged = await client.get(
            NEARBY, params={**point, "q": "milk"}, headers={"Authorization": "Token forged"}
        )
        other_host = await client.get(
            NEARBY, params={**point, "q": "rye"}, headers={"Host": "evil.example"}
        )
        other_accept = await client.get(
            NEARBY, params={**point, "q": "oat"}, headers={"Accept": "text/csv"}
        )
    assert first.status_code == 200
    assert forged.status_code == 401
    assert other_host.status_code == 400
    assert other_accept.status_code == 406
    assert len(django_entries) == 4


async def test_a_routed_answer_is_cached_and_a_write_makes_it_unreachable(city, django_entries):
    point = {"lat": city["lat"], "lng": city["lng"]}
    query = {**point, "q": "sourdough"}
    async with served() as client:
        await client.get(NEARBY, params=point)
        first = await client.get(NEARBY, params=query)
        again = await client.get(NEARBY, params=query)
        await sync_to_async(reprice)(city["products"][0], "5.10")
        after = await client.get(NEARBY, params=query)
    assert [first.headers["x-cache"], again.headers["x-cache"]] == ["MISS", "HIT"]
    assert again.content == first.content
    assert after.headers["x-cache"] == "MISS"
    assert after.json()["results"][0]["product"]["price"] == "5.10"
    assert len(django_entries) == 1


async def test_without_redis_the_route_answers_from_the_database(city, settings, django_entries):
    settings.CACHES = {
        "default": {
            **settings.CACHES["default"],
            "LOCATION": f"redis://127.0.0.1:{closed_port()}/0",
        }
    }
    point = {"lat": city["lat"], "lng": city["lng"]}
    async with served() as client:
        answers = [await client.get(NEARBY, params=point) for _ in range(3)]
    assert [answer.status_code for answer in answers] == [200, 200, 200]
    assert [answer.headers["x-cache"] for answer in answers] == ["MISS", "MISS", "MISS"]
    assert answers[2].content == answers[0].content
    assert len(django_entries) == 1


async def test_when_the_database_fails_django_answers(city, settings, monkeypatch, django_entries):
    unreachable = {
        **async_db._connection_kwargs(),
        "port": closed_port(),
        "connect_timeout": 1,
    }
    monkeypatch.setattr(async_db, "_connection_kwargs", lambda alias="default": unreachable)
    monkeypatch.setattr(async_db, "_retry_at", 0.0)
    settings.DATABASE_CONNECT_TIMEOUT = 1
    queried = []
    fetch_value = async_db.fetch_value

    async def counted(sql, params):
        queried.append(params)
        return await fetch_value(sql, params)

    monkeypatch.setattr(async_db, "fetch_value", counted)
    point = {"lat": city["lat"], "lng": city["lng"]}
    async with served() as client:
        await client.get(NEARBY, params=point)
        failed_over = await client.get(NEARBY, params={**point, "q": "milk"})
        next_one = await client.get(NEARBY, params={**point, "q": "rye"})
    assert failed_over.status_code == next_one.status_code == 200
    assert [row["product"]["title"] for row in failed_over.json()["results"]] == [
        "Oat Milk",
        "Whole Milk",
    ]
    assert len(django_entries) == 3
    # Within the retry window the route does not wait on the pool again.
    assert len(queried) == 1


def test_the_answer_rendered_in_sql_is_what_the_serializers_render(city, api_client):
    from datetime import UTC, datetime

    from catalog.models import Product
    from catalog.serializers import ProductNearbySerializer

    oat_milk = city["products"][2]
    Product.objects.filter(pk=oat_milk.pk).update(
        created_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        description='Says "hi"\n\tand\\or caf\u00e9 \u2014 \x01 \U0001f95b',
    )
    response = api_client.get(NEARBY, {"lat": city["lat"], "lng": city["lng"], "in_stock": "0"})
    answer = response.json()["results"]
    products = Product.objects.select_related("merchant").in_bulk(
        [row["product"]["id"] for row in answer]
    )
    assert len(products) == 5
    for row in answer:
        product = products[row["product"]["id"]]
        expected = ProductNearbySerializer(
            {
                "product": product,
                "merchant": product.merchant,
                "distance_m": row["distance_m"],
                "quantity": product.inventory.quantity,
            }
        ).data
        assert row == expected
    rendered = next(row for row in answer if row["product"]["id"] == oat_milk.pk)
    assert rendered["product"]["created_at"] == "2026-01-02T03:04:05Z"
    assert rendered["product"]["description"].endswith("\x01 \U0001f95b")


def test_every_write_path_keeps_the_stored_product_json(city, api_client):
    from catalog.models import Product

    bread = city["products"][0]
    Product.objects.filter(pk=bread.pk).update(title='Bread "Deluxe"', price="7.25")
    with connections["default"].cursor() as cursor:
        cursor.execute("UPDATE catalog_product SET is_published = false WHERE id = %s", [bread.pk])
        cursor.execute("UPDATE catalog_product SET is_published = true WHERE id = %s", [bread.pk])
    response = api_client.get(NEARBY, {"lat": city["lat"], "lng": city["lng"], "q": "deluxe"})
    [row] = response.json()["results"]
    assert row["product"]["title"] == 'Bread "Deluxe"'
    assert row["product"]["price"] == "7.25"
    assert row["product"]["is_published"] is True
    bread.refresh_from_db()
    assert row["product"]["updated_at"] == bread.updated_at.isoformat().replace("+00:00", "Z")


async def test_made_up_accept_headers_cannot_grow_the_process(city, monkeypatch, django_entries):
    monkeypatch.setattr(nearby_route.FAST_ROUTES[0].learned, "max_keys", 3)
    point = {"lat": city["lat"], "lng": city["lng"]}
    async with served() as client:
        for weight in range(1, 6):
            accept = {"Accept": f"application/json; q=0.{weight}"}
            await client.get(NEARBY, params=point, headers=accept)
            await client.get(NEARBY, params={**point, "radius": 999}, headers=accept)
    assert len(nearby_route.FAST_ROUTES[0].learned) == 3
    # Three identities learned (their second request routed), two left to Django.
    assert len(django_entries) == 3 + 2 * 2
