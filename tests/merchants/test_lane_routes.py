"""merchants/nearby and delivering-to on the ASGI event loop (merchants/lane_routes.py):
Django's bytes and headers for the plain requests, Django itself for everything else."""

import random
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pytest
from django.http import QueryDict
from django_redis import get_redis_connection

from geomarket import demand
from geomarket.answer_cache import answer_prefix
from merchants import lane_routes
from merchants.serializers import DeliveringToParamsSerializer, MerchantsNearbyParamsSerializer
from tests import factories
from tests.search.served import in_thread, served

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("async_pool_closed"),
]

NEARBY = "/api/v1/merchants/nearby/"
DELIVERING_TO = "/api/v1/merchants/delivering-to/"
FAR = {"lat": "10.0", "lng": "-30.0"}
LAT, LNG = factories.BERLIN
POINT = {"lat": f"{LAT:.6f}", "lng": f"{LNG:.6f}"}


def make_city(*, reopens_in: timedelta) -> dict:
    """Three shops delivering around the point: one always open, one closed until
    `reopens_in` from now, one open only at 10:00-11:00 UTC on Mondays."""
    always = factories.merchant(name="Always \u2028 Open", lat=LAT + 0.001, lng=LNG)
    closed = factories.merchant(name='Closed "for now"', lat=LAT - 0.002, lng=LNG + 0.001)
    weekly = factories.merchant(name="Mondays", lat=LAT + 0.004, lng=LNG - 0.003)
    now = datetime.now(UTC)
    factories.closure(
        closed, (now - timedelta(hours=1)).isoformat(), (now + reopens_in).isoformat()
    )
    factories.hours(weekly, (0, "10:00", "11:00"), timezone="UTC")
    for shop, fee in ((always, "2.50"), (closed, "1.00"), (weekly, "3.75")):
        factories.zone(merchant=shop, fee=fee)
    return {"always": always, "closed": closed, "weekly": weekly}


@pytest.fixture
async def city():
    return await in_thread(make_city, reopens_in=timedelta(days=2))


# Plain queries customer apps send, each answered with a 200.
CASES = {
    NEARBY: [
        POINT,
        {**POINT, "radius": "300"},
        {**POINT, "limit": "2", "radius": "50000"},
        {**POINT, "open_now": "true"},
        {**POINT, "open_at": "2026-03-02T12:00:00+00:00"},
        {**POINT, "open_now": "false", "radius": "1000.5"},
        FAR,
    ],
    DELIVERING_TO: [
        POINT,
        {**POINT, "limit": "1"},
        {**POINT, "limit": "500"},
        {**POINT, "open_now": "true"},
        {**POINT, "open_at": "2026-03-02T12:00:00Z"},
        # Not a parameter of delivering-to: ignored, as DRF ignores it.
        {**POINT, "radius": "10", "limit": "3"},
        FAR,
    ],
}


async def answers(client, path: str) -> list:
    return [await client.get(path, params=query) for query in CASES[path]]


@pytest.mark.parametrize("path", [NEARBY, DELIVERING_TO])
async def test_answers_equal_djangos_byte_for_byte(city, path, settings, django_entries):
    async with served() as client:
        await client.get(path, params={"lat": "0", "lng": "0"})
        assert len(django_entries) == 1
        routed = await answers(client, path)
        assert len(django_entries) == 1
        settings.MERCHANT_ROUTES = False
        settings.FRONT_CACHE_PATHS = frozenset()
        reference = await answers(client, path)
    assert len(django_entries) == 1 + len(reference)
    for ours, theirs in zip(routed, reference, strict=True):
        assert ours.status_code == theirs.status_code == 200
        assert ours.content == theirs.content
        assert dict(ours.headers) == dict(theirs.headers)
    names = [[row["name"] for row in answer.json()["results"]] for answer in routed]
    assert names[0] == ["Always \u2028 Open", 'Closed "for now"', "Mondays"]
    # Open now; and on a Monday at noon, when the closure was not yet, after hours.
    assert names[3][0] == "Always \u2028 Open"
    assert 'Closed "for now"' not in names[3]
    assert names[4] == ["Always \u2028 Open", 'Closed "for now"']
    assert names[-1] == []
    closed = routed[0].json()["results"][1]
    assert closed["open_now"] is False
    assert closed["next_opening_at"] is not None


# Requests only Django answers: its 400s, unusual spellings that DRF reads, GeoJSON by
# the URL. Each with its status and a member of its answer.
UNROUTED = {
    NEARBY: [
        ({**POINT, "radius": "-5"}, 400, "radius"),
        ({**POINT, "open_now": "true", "open_at": "2026-03-02T10:30:00Z"}, 400, "open_at"),
        ({"lat": "52.5"}, 400, "lng"),
        ({**POINT, "radius": "5e3"}, 200, "results"),
        ({**POINT, "format": "geojson"}, 200, "features"),
    ],
    DELIVERING_TO: [
        ({**POINT, "limit": "501"}, 400, "limit"),
        ({**POINT, "lat": "91"}, 400, "lat"),
        ({**POINT, "lat": f" {LAT}"}, 200, "results"),
        ({**POINT, "format": "json"}, 200, "results"),
        ({**POINT, "format": "geojson"}, 200, "features"),
    ],
}


@pytest.mark.parametrize("path", [NEARBY, DELIVERING_TO])
async def test_bad_or_unusual_requests_get_djangos_answer(city, path, settings, django_entries):
    cases = UNROUTED[path]
    async with served() as client:
        await client.get(path, params=POINT)
        answers = [await client.get(path, params=query) for query, _, _ in cases]
        settings.MERCHANT_ROUTES = False
        settings.FRONT_CACHE_PATHS = frozenset()
        reference = [await client.get(path, params=query) for query, _, _ in cases]
    assert len(django_entries) == 1 + 2 * len(cases)
    for answer, theirs, (query, status, wording) in zip(answers, reference, cases, strict=True):
        assert answer.status_code == status, query
        assert wording in answer.json(), query
        assert answer.content == theirs.content, query


@pytest.mark.parametrize("path", [NEARBY, DELIVERING_TO])
async def test_geojson_by_accept_and_callers_with_credentials_go_to_django(
    city, path, django_entries
):
    async with served() as client:
        await client.get(path, params=POINT)
        collection = await client.get(
            path, params={**POINT, "limit": "2"}, headers={"Accept": "application/geo+json"}
        )
        forged = await client.get(
            path, params={**POINT, "limit": "3"}, headers={"Authorization": "Token forged"}
        )
        routed = await client.get(path, params={**POINT, "limit": "4"})
    assert collection.json()["type"] == "FeatureCollection"
    assert forged.status_code == 401
    assert routed.status_code == 200
    assert len(django_entries) == 3


def front_entries() -> dict[bytes, int]:
    """The front cache's entries: key to milliseconds left."""
    redis = get_redis_connection("default")
    keys = redis.keys(f"*{answer_prefix()}:front:*")
    return {key: redis.pttl(key) for key in keys}


async def test_a_routed_delivering_to_answer_is_kept_until_a_shown_state_changes(
    settings, django_entries
):
    await in_thread(make_city, reopens_in=timedelta(seconds=30))
    query = {**POINT, "limit": "7"}
    async with served() as client:
        # Learned from an answer with no shop, kept the cache's whole timeout.
        await client.get(DELIVERING_TO, params=FAR)
        first = await client.get(DELIVERING_TO, params=query)
        again = await client.get(DELIVERING_TO, params=query)
        open_now = {**query, "open_now": "true"}
        [await client.get(DELIVERING_TO, params=open_now) for _ in range(2)]
    assert [first.headers["x-cache"], again.headers["x-cache"]] == ["MISS", "HIT"]
    assert again.content == first.content
    assert len(django_entries) == 1
    kept = await in_thread(front_entries)
    # Django's first answer and the route's: none of the open-now one.
    assert len(kept) == 2
    # The closed shop reopens within 30 s: the route's answer expires then.
    assert sorted(kept.values())[0] <= 30_000
    assert sorted(kept.values())[1] > 50_000


async def test_an_empty_delivering_to_answer_counts_as_unserved_demand(city, django_entries):
    def counted():
        key = demand._day_key(demand._today())
        return get_redis_connection("default").hgetall(key)

    async with served() as client:
        await client.get(DELIVERING_TO, params=POINT)
        found = await client.get(DELIVERING_TO, params={**POINT, "limit": "2"})
        empty = await client.get(DELIVERING_TO, params=FAR)
    assert found.json()["results"]
    assert empty.json() == {"results": []}
    assert len(django_entries) == 1
    row, column = demand.cell_of(lat=10.0, lng=-30.0)
    assert await in_thread(counted) == {f"{row}:{column}".encode(): b"1"}


TOKENS = {
    "lat": ["52.52", "-90", "90.0001", "", "abc", " 52.5", "1e1"],
    "lng": ["13.405", "180", "-180.5", "x", ""],
    "radius": ["3000", "0", "50000", "50000.5", "-1", "1e3", ""],
    "limit": ["20", "1", "100", "101", "500", "501", "0", "007", "5.0", ""],
    "open_now": ["true", "false", "1", "yes", "maybe", ""],
    "open_at": ["2026-03-02T10:30:00Z", "2026-03-02T10:30:00+01:00", "2026-03-02", "x", ""],
}


@pytest.mark.parametrize(
    ("parse", "serializer"),
    [
        (lane_routes.parse_nearby, MerchantsNearbyParamsSerializer),
        (lane_routes.parse_delivering_to, DeliveringToParamsSerializer),
    ],
)
def test_the_parsers_take_only_what_the_serializers_take_and_read_it_the_same(parse, serializer):
    rng = random.Random(3)
    taken = 0
    for _ in range(600):
        pairs = [
            (name, rng.choice(choices[:2] if rng.random() < 0.8 else choices))
            for name, choices in TOKENS.items()
            if name in ("lat", "lng") or rng.random() < 0.4
        ]
        query = urlencode(pairs)
        parsed = parse(query.encode())
        reference = serializer(data=QueryDict(query))
        if parsed is None:
            continue
        taken += 1
        assert reference.is_valid(), (query, reference.errors)
        assert parsed == dict(reference.validated_data), query
    assert taken > 100
