"""Unserved demand: a search that finds nothing counts in a cell of at least 250 m, by
day, with nothing that ties it to anyone; the console's heat map reads the last 30 days."""

import random

import pytest
from django.db import connection
from django_redis import get_redis_connection
from rest_framework.test import APIClient

from geomarket import demand
from tests import factories
from tests.search.served import in_thread, served

FAR = {"lat": "10.0", "lng": "-30.0"}


def geodesic_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT ST_Distance(ST_MakePoint(%s, %s)::geography, ST_MakePoint(%s, %s)::geography)",
            [a[1], a[0], b[1], b[0]],
        )
        return cursor.fetchone()[0]


@pytest.mark.django_db
def test_every_cell_is_at_least_250_m_on_each_side_and_holds_its_points():
    rng = random.Random(7)
    for _ in range(300):
        lat, lng = rng.uniform(-89.9, 89.9), rng.uniform(-180, 179.999)
        row, column = demand.cell_of(lat=lat, lng=lng)
        south, north = row * demand._ROW_DEG, (row + 1) * demand._ROW_DEG
        width = demand._column_deg(row)
        west = column * width - 180
        assert south <= lat < north
        assert west <= lng < west + width + 1e-9
        assert geodesic_m((south, west), (north, west)) >= demand.CELL_M
        if width < 360:
            poleward = north if abs(north) > abs(south) else south
            assert geodesic_m((poleward, west), (poleward, west + width)) >= demand.CELL_M
        centre_lat, centre_lng = demand.cell_center(row, column)
        assert demand.cell_of(lat=centre_lat, lng=centre_lng) == (row, column)


def counted() -> dict[str, int]:
    key = demand._day_key(demand._today())
    return {
        field.decode(): int(count)
        for field, count in get_redis_connection("default").hgetall(key).items()
    }


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/v1/merchants/delivering-to/", "/api/v1/products/nearby/"])
def test_a_search_that_finds_nothing_counts_in_its_cell_and_only_there(path):
    shop = factories.merchant(lat=52.52, lng=13.405)
    factories.zone(merchant=shop)
    item = factories.product(merchant=shop)
    factories.stock(product=item)
    client = APIClient()
    assert client.get(path, {"lat": "52.52", "lng": "13.405"}).json()["results"]
    assert counted() == {}
    assert client.get(path, FAR).json()["results"] == []
    row, column = demand.cell_of(lat=10.0, lng=-30.0)
    assert counted() == {f"{row}:{column}": 1}
    key = demand._day_key(demand._today())
    ttl = get_redis_connection("default").ttl(key)
    assert 0 < ttl <= demand.RETENTION_DAYS * 86400
    # Another point of the same cell counts there; the answer now comes from the cache,
    # so the same search again does not.
    centre_lat, centre_lng = demand.cell_center(row, column)
    client.get(path, {"lat": f"{centre_lat:.6f}", "lng": f"{centre_lng:.6f}"})
    client.get(path, FAR)
    assert counted() == {f"{row}:{column}": 2}
    (cell,) = demand.unserved_cells()
    assert cell["requests"] == 2
    lng, lat = cell["location"]["coordinates"]
    assert geodesic_m((lat, lng), (10.0, -30.0)) < 400


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("async_pool_closed")
async def test_the_event_loops_nearby_route_counts_too(django_entries):
    def stocked_shop():
        item = factories.product(merchant=factories.merchant(lat=52.52, lng=13.405))
        factories.stock(product=item)

    await in_thread(stocked_shop)
    path = "/api/v1/products/nearby/"
    async with served() as client:
        await client.get(path, params={"lat": "52.52", "lng": "13.405"})
        answer = await client.get(path, params=FAR)
    assert answer.json() == {"results": []}
    assert len(django_entries) == 1
    row, column = demand.cell_of(lat=10.0, lng=-30.0)
    assert await in_thread(counted) == {f"{row}:{column}": 1}


@pytest.mark.django_db
def test_the_console_shows_the_heat_map_to_operators_only(client):
    APIClient().get("/api/v1/merchants/delivering-to/", FAR)
    client.force_login(factories.user(is_staff=True))
    (cell,) = client.get("/console/data/").json()["unserved"]
    assert cell["requests"] == 1
    # Anyone may become an owner: one search's cell could tell where its customer lives.
    client.force_login(factories.merchant().owner)
    assert client.get("/console/data/").json()["unserved"] == []


@pytest.mark.django_db
def test_the_heat_map_holds_the_busiest_cells_at_most(client, monkeypatch):
    from console import selectors

    monkeypatch.setattr(selectors, "UNSERVED_CELLS", 2)
    for lat, searches in ((10.0, 3), (20.0, 1), (30.0, 2)):
        for lng in range(searches):
            # Points a few metres apart (one cell), each a search of its own (no cache).
            point = {"lat": lat + lng * 1e-5, "lng": -30.0}
            APIClient().get("/api/v1/merchants/delivering-to/", point)
    client.force_login(factories.user(is_staff=True))
    cells = client.get("/console/data/").json()["unserved"]
    assert [cell["requests"] for cell in cells] == [3, 2]


@pytest.mark.django_db
def test_a_redis_outage_loses_counts_not_searches(settings):
    settings.CACHES = {
        **settings.CACHES,
        "default": {**settings.CACHES["default"], "LOCATION": "redis://127.0.0.1:1/0"},
    }
    answer = APIClient().get("/api/v1/merchants/delivering-to/", FAR)
    assert answer.status_code == 200
    assert demand.unserved_cells() == []
