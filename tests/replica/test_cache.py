"""An answer filed under the cache versions a write bumped was computed where that write
is: never on a replica that has not replayed it."""

from decimal import Decimal

import pytest

from catalog.services import product_update
from tests import factories
from tests.market import api_client_as
from tests.replica.conftest import REPLICA, apply_delayed, replay_paused, replayed

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", REPLICA])


# Two ways a replica falls behind: replay held back, and replay delayed by the setting an
# operator uses for a deliberately delayed replica.
BEHIND = {"paused": replay_paused, "delayed": lambda: apply_delayed(60)}


@pytest.mark.parametrize("behind", sorted(BEHIND))
def test_an_answer_under_new_versions_is_not_computed_on_a_replica_behind_them(replica, behind):
    bread = factories.product(merchant=factories.merchant(), price="3.00")
    replayed()
    url = f"/api/v1/search/products/?merchant_id={bread.merchant_id}"
    client = api_client_as(None)

    def prices() -> list[Decimal]:
        response = client.get(url)
        assert response.status_code == 200, response.content
        return [Decimal(result["price"]) for result in response.json()["results"]]

    assert prices() == [Decimal("3.00")]
    BEHIND[behind]()
    # Committed by the service, not through a request: no client is owed its own write.
    product_update(product=bread, data={"price": Decimal("4.00")})
    assert prices() == [Decimal("4.00")]
    # Filed, and still the answer when asked again.
    assert prices() == [Decimal("4.00")]
