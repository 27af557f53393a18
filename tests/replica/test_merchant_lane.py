"""merchants/nearby and delivering-to on the event-loop lane read from the replica as
their views do, and file no delivering-to answer under versions the replica has not
replayed."""

import pytest

from merchants.models import Merchant
from merchants.services import merchant_update
from tests import factories
from tests.replica.conftest import REPLICA, replay_paused, replayed
from tests.search.served import in_thread, served

pytestmark = [
    pytest.mark.django_db(transaction=True, databases=["default", REPLICA]),
    pytest.mark.usefixtures("async_pool_closed"),
]

NEARBY = "/api/v1/merchants/nearby/"
DELIVERING_TO = "/api/v1/merchants/delivering-to/"


@pytest.fixture
def shop(replica):
    shop = factories.merchant(name="Corner Shop")
    factories.zone(merchant=shop)
    replayed()
    return shop


def names(answer) -> list[str]:
    assert answer.status_code == 200, answer.content
    return [row["name"] for row in answer.json()["results"]]


async def test_the_routes_read_the_replica_but_file_nothing_it_has_not_replayed(
    shop, django_entries
):
    point = {"lat": shop.location.y, "lng": shop.location.x}
    async with served() as client:
        await client.get(NEARBY, params=point)
        await client.get(DELIVERING_TO, params=point)
        await in_thread(replay_paused)
        # Not through the service: no version moves, so the replica may answer.
        await in_thread(Merchant.objects.filter(pk=shop.pk).update, name="Renamed")
        nearby = await client.get(NEARBY, params={**point, "limit": 5})
        unbumped = await client.get(DELIVERING_TO, params={**point, "limit": 5})
        await in_thread(merchant_update, merchant=shop, data={"name": "Bumped"})
        bumped = await client.get(DELIVERING_TO, params={**point, "limit": 6})
        again = await client.get(DELIVERING_TO, params={**point, "limit": 6})
    assert len(django_entries) == 2
    assert names(nearby) == names(unbumped) == ["Corner Shop"]
    assert names(bumped) == names(again) == ["Bumped"]
    assert again.headers["x-cache"] == "HIT"
