"""The event-loop lane's routes read from the replica under the same rules as Django:
never an answer filed under versions the replica has not replayed, and the primary when
the replica fails."""

from decimal import Decimal

import pytest
from django.db import connections

from catalog.models import Product
from catalog.services import product_update
from delivery.services import courier_create
from tests import factories
from tests.analytics.history import build_history
from tests.replica.conftest import REPLICA, StoppableProxy, replay_paused, replayed
from tests.search.served import in_thread, served

pytestmark = [
    pytest.mark.django_db(transaction=True, databases=["default", REPLICA]),
    pytest.mark.usefixtures("async_pool_closed"),
]

NEARBY = "/api/v1/products/nearby/"
PING = "/api/v1/couriers/me/location/"
REVENUE = "/api/v1/analytics/revenue/"


@pytest.fixture
def bread(replica):
    bread = factories.product(merchant=factories.merchant(), title="Bread", price="3.00")
    factories.stock(product=bread, quantity=5)
    replayed()
    return bread


def near(bread, radius: int) -> dict:
    location = bread.merchant.location
    return {"lat": location.y, "lng": location.x, "radius": radius}


def price(answer) -> Decimal:
    assert answer.status_code == 200, answer.content
    return Decimal(answer.json()["results"][0]["product"]["price"])


async def test_the_nearby_route_reads_the_replica_but_files_nothing_it_has_not_replayed(
    bread, django_entries
):
    async with served() as client:
        await client.get(NEARBY, params=near(bread, 1000))
        await in_thread(replay_paused)
        # Not through the service: no version moves, so the replica may answer.
        await in_thread(Product.objects.filter(pk=bread.pk).update, price="4.00")
        unbumped = await client.get(NEARBY, params=near(bread, 2000))
        await in_thread(product_update, product=bread, data={"price": Decimal("5.00")})
        bumped = await client.get(NEARBY, params=near(bread, 3000))
        again = await client.get(NEARBY, params=near(bread, 3000))
    assert len(django_entries) == 1
    assert price(unbumped) == Decimal("3.00")
    assert [price(bumped), price(again)] == [Decimal("5.00"), Decimal("5.00")]
    assert again.headers["x-cache"] == "HIT"


async def test_a_stopped_replica_leaves_the_routes_reads_to_the_primary(
    bread, settings, django_entries
):
    replica_settings = connections[REPLICA].settings_dict
    port = replica_settings["PORT"]
    proxy = StoppableProxy(int(port))
    replica_settings["PORT"] = proxy.listener.getsockname()[1]
    # The reading taken before stands: the route tries the replica.
    settings.REPLICA_CHECK_SECONDS = 60
    try:
        async with served() as client:
            await client.get(NEARBY, params=near(bread, 1000))
            proxy.stop()
            answer = await client.get(NEARBY, params=near(bread, 2000))
    finally:
        replica_settings["PORT"] = port
    assert len(django_entries) == 1
    assert price(answer) == Decimal("3.00")


async def test_a_couriers_pings_stay_on_the_event_loop(replica, django_entries):
    """A ping writes nothing replicas serve: Django's answer sets no read-after cookie,
    which would keep the route from learning it (and the courier's next pings from it)."""

    def courier_token() -> str:
        user = factories.user()
        courier_create(user=user, name="Courier", vehicle="bike", capacity=1)
        return user.auth_token.key

    headers = {"Authorization": f"Token {await in_thread(courier_token)}"}
    ping = {"lat": 52.5301, "lng": 13.4102}
    async with served() as client:
        first = await client.post(PING, json=ping, headers=headers)
        routed = await client.post(PING, json=ping, headers=headers)
    assert first.status_code == routed.status_code == 200
    assert "set-cookie" not in first.headers
    assert len(django_entries) == 1


async def test_a_revoked_operator_key_is_refused_while_the_replica_has_not_seen_it(
    replica, django_entries
):
    await in_thread(build_history)
    operator = await in_thread(factories.user, is_staff=True)
    headers = {"Authorization": f"Token {operator.auth_token.key}"}
    march = {"date_from": "2026-03-01", "date_to": "2026-03-31"}
    await in_thread(replayed)
    async with served() as client:
        await client.get(REVENUE, params=march, headers=headers)
        routed = await client.get(REVENUE, params=march, headers=headers)
        await in_thread(replay_paused)
        await in_thread(operator.auth_token.delete)
        revoked = await client.get(REVENUE, params=march, headers=headers)
    assert routed.status_code == 200
    assert routed.json() != []
    assert revoked.status_code == 401
