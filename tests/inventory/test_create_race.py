"""Of concurrent creates of one product's stock row, every loser gets the 400 a create
after the winner gets, naming `product_id`, not the unique index's 409."""

import pytest

from inventory.models import Inventory
from tests import factories
from tests.market import api_client_as
from tests.threads import behind_an_uncommitted_write, run_in_threads

pytestmark = pytest.mark.django_db(transaction=True)

INVENTORY = "/api/v1/inventory/"
TAKEN = {"product_id": ["This product already has an inventory row."]}


@pytest.fixture
def owned_product():
    owner = factories.user()
    return owner, factories.product(merchant=factories.merchant(owner=owner), price="1.00")


def test_every_loser_of_concurrent_creates_is_told_the_product_has_a_row(owned_product):
    owner, product = owned_product

    def create():
        return api_client_as(owner).post(INVENTORY, {"product_id": product.pk, "quantity": 5})

    responses = run_in_threads(create, create, create)
    assert sorted(r.status_code for r in responses) == [201, 400, 400]
    assert [r.json() for r in responses if r.status_code == 400] == [TAKEN, TAKEN]
    assert Inventory.objects.filter(product=product).count() == 1


def test_a_create_that_waited_for_a_concurrent_one_on_the_unique_index_is_a_400(owned_product):
    """The race made certain: the winner's row is inserted and not yet committed, so the
    loser's check does not see it and its INSERT waits on the index until the commit."""
    owner, product = owned_product
    response = behind_an_uncommitted_write(
        "INSERT INTO inventory_inventory"
        " (merchant_id, product_id, quantity, low_stock_threshold, updated_at)"
        " VALUES (%s, %s, 7, 5, now())",
        [product.merchant_id, product.pk],
        lambda: api_client_as(owner).post(INVENTORY, {"product_id": product.pk, "quantity": 5}),
    )
    assert response.status_code == 400
    assert response.json() == TAKEN
    assert list(Inventory.objects.filter(product=product).values_list("quantity", flat=True)) == [7]
