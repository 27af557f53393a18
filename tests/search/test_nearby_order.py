"""products/nearby's order: nearest merchant first by the distance it shows, ties by
product id, whichever merchants the walk of the location index reaches first and
wherever `limit` cuts, through Django and through the event loop's route alike."""

import pytest

from tests import factories
from tests.search.served import served

NEARBY = "/api/v1/products/nearby/"
LAT, LNG = factories.BERLIN

# Two shops about 1 km away: East is nearer on the sphere, which orders the walk of the
# location index (`<->`), North on the spheroid, which the answer's distances are.
NORTH = (LAT + 0.0089935, LNG)
EAST = (LAT, LNG + 0.014772)


def shop(name: str, at: tuple[float, float], *, is_active: bool = True):
    return factories.merchant(name=name, lat=at[0], lng=at[1], is_active=is_active)


def sell(merchant, title: str):
    item = factories.product(merchant=merchant, title=title)
    factories.stock(product=item)
    return item


def answer(client, **params) -> list[tuple[float, int]]:
    response = client.get(NEARBY, {"lat": LAT, "lng": LNG, **params})
    assert response.status_code == 200
    return [(row["distance_m"], row["product"]["id"]) for row in response.json()["results"]]


@pytest.mark.django_db
def test_a_shop_nearer_on_the_spheroid_than_the_walk_says_is_not_cut_by_the_limit(api_client):
    north, east = sell(shop("North", NORTH), "North"), sell(shop("East", EAST), "East")
    both = answer(api_client, limit=2)
    assert [product for _, product in both] == [north.pk, east.pk]
    assert both[0][0] < both[1][0]
    assert answer(api_client, limit=1) == both[:1]


@pytest.mark.django_db
def test_the_rest_of_the_last_walked_shop_comes_before_a_farther_walked_row(api_client):
    sell(shop("East", EAST), "East")
    north = shop("North", NORTH)
    items = [sell(north, f"North {n}") for n in range(3)]
    assert [product for _, product in answer(api_client, limit=2)] == [
        items[0].pk,
        items[1].pk,
    ]


@pytest.mark.django_db
def test_products_of_shops_as_near_come_by_product_id_wherever_the_limit_cuts(api_client):
    first, second = shop("First", NORTH), shop("Second", NORTH)
    items = [sell(merchant, "Tea") for _ in range(3) for merchant in (second, first)]
    ids = sorted(item.pk for item in items)
    for limit in range(1, len(ids) + 1):
        assert [product for _, product in answer(api_client, limit=limit)] == ids[:limit]


@pytest.mark.django_db
def test_distances_the_answer_shows_as_equal_are_ties(api_client):
    # A millimetre apart: the same distance to the centimetre shown.
    farther = sell(shop("Farther", (NORTH[0] + 1e-8, NORTH[1])), "Farther")
    nearer = sell(shop("Nearer", NORTH), "Nearer")
    rows = answer(api_client)
    assert rows[0][0] == rows[1][0]
    assert [product for _, product in rows] == [farther.pk, nearer.pk]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("async_pool_closed")
async def test_the_event_loops_route_answers_in_the_same_order(settings, django_entries):
    from asgiref.sync import sync_to_async

    @sync_to_async
    def city():
        north = sell(shop("North", NORTH), "North")
        east = sell(shop("East", EAST), "East")
        twin = shop("Twin", NORTH)
        return [north.pk, sell(twin, "Twin").pk, east.pk]

    expected = await city()
    queries = [{"lat": LAT, "lng": LNG, "limit": limit} for limit in (1, 2, 3)]
    async with served() as client:
        await client.get(NEARBY, params={"lat": 0, "lng": 0})
        routed = [await client.get(NEARBY, params=query) for query in queries]
        assert len(django_entries) == 1
        settings.NEARBY_ROUTE = False
        settings.FRONT_CACHE_PATHS = frozenset()
        reference = [await client.get(NEARBY, params=query) for query in queries]
    for limit, ours, theirs in zip((1, 2, 3), routed, reference, strict=True):
        assert ours.content == theirs.content
        ids = [row["product"]["id"] for row in ours.json()["results"]]
        assert ids == expected[:limit]


def reference(*, lat: float, lng: float, radius: float, limit: int, in_stock: bool) -> list:
    """Every product in the radius ranked by brute force: (distance shown, product id)."""
    from django.db import connection

    stocked = "AND i.quantity > 0" if in_stock else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT round(ST_Distance(m.location, ST_MakePoint(%s, %s)::geography)::numeric, 2),
                   p.id
            FROM catalog_product p
            JOIN merchants_merchant m ON m.id = p.merchant_id
            LEFT JOIN inventory_inventory i ON i.product_id = p.id
            WHERE m.is_active AND p.is_published {stocked}
              AND ST_DWithin(m.location, ST_MakePoint(%s, %s)::geography, %s)
            ORDER BY 1, 2 LIMIT %s""",  # noqa: S608 - a fixed fragment only
            [lng, lat, lng, lat, radius, limit],
        )
        return [(float(distance), product) for distance, product in cursor.fetchall()]


@pytest.mark.django_db
def test_every_limit_answers_the_nearest_rows_a_brute_force_ranking_gives(api_client):
    import random

    rng = random.Random(20)
    places = [(LAT + rng.uniform(-0.01, 0.01), LNG + rng.uniform(-0.015, 0.015)) for _ in range(12)]
    for n in range(30):
        # Some shops share a building, some are closed; products interleave by id.
        merchant = shop(f"Shop {n}", rng.choice(places), is_active=rng.random() < 0.9)
        for _ in range(rng.randint(0, 4)):
            item = factories.product(merchant=merchant, is_published=rng.random() < 0.9)
            factories.stock(product=item, quantity=rng.choice([0, 3]))
    for _ in range(40):
        lat, lng = LAT + rng.uniform(-0.01, 0.01), LNG + rng.uniform(-0.015, 0.015)
        limit, radius = rng.randint(1, 8), rng.choice([800, 1500, 3000])
        in_stock = rng.random() < 0.5
        expected = reference(lat=lat, lng=lng, radius=radius, limit=limit, in_stock=in_stock)
        params = {"lat": lat, "lng": lng, "radius": radius, "limit": limit}
        response = api_client.get(NEARBY, {**params, "in_stock": str(in_stock).lower()})
        rows = [(row["distance_m"], row["product"]["id"]) for row in response.json()["results"]]
        assert rows == expected, params
