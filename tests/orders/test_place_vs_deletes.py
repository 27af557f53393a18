"""An order placed while one of its products is being deleted: the order read the product
before the delete committed, and waits for the stock row the delete holds. It is refused
as an order for an unknown product is (400 naming it), and writes nothing."""

import pytest

from inventory.models import Inventory
from orders.models import IdempotencyKey, Order
from tests import factories
from tests.market import ORDERS, api_client_as, build_market, order_body
from tests.threads import behind_an_uncommitted_write

pytestmark = pytest.mark.django_db(transaction=True)

# The product and its stock row, deleted as `product_delete` deletes them.
PRODUCT_DELETE_SQL = """
WITH stock AS (DELETE FROM inventory_inventory WHERE product_id = %(id)s)
DELETE FROM catalog_product WHERE id = %(id)s
"""


@pytest.mark.parametrize("with_milk", [False, True], ids=["one line", "two lines"])
def test_an_order_for_a_product_deleted_meanwhile_is_refused_as_unknown(with_milk):
    market = build_market(api_client_as)
    gone = factories.product(merchant=market["shop"], price="6.00")
    factories.stock(product=gone, quantity=5)
    lines = [(gone, 1), (market["milk"], 2)] if with_milk else [(gone, 1)]

    def place():
        answer = market["client"].post(
            ORDERS, order_body(market, *lines), format="json", HTTP_IDEMPOTENCY_KEY="once"
        )
        return answer.status_code, answer.json()

    status, body = behind_an_uncommitted_write(PRODUCT_DELETE_SQL, {"id": gone.pk}, place)
    assert status == 400, body
    assert body == {"items": [f"Product {gone.pk} is not sold by this merchant."]}
    assert not Order.objects.exists()
    assert not IdempotencyKey.objects.exists()
    assert Inventory.objects.get(product=market["milk"]).quantity == 10
