"""`stock_take` outside an order: its guard on the lines it is given."""

import pytest
from django.db import transaction

from inventory.models import Inventory
from inventory.services import stock_take
from orders.services import OrderLine
from tests import factories

pytestmark = pytest.mark.django_db


def test_a_product_in_two_lines_is_refused_and_nothing_is_taken():
    product = factories.product(merchant=factories.merchant(), price="1.00")
    other = factories.product(merchant=product.merchant, price="1.00")
    for made in (product, other):
        factories.stock(product=made, quantity=10)
    with pytest.raises(ValueError, match="in one line"), transaction.atomic():
        stock_take(
            lines=[OrderLine(product.pk, 1), OrderLine(other.pk, 1), OrderLine(product.pk, 2)]
        )
    assert set(Inventory.objects.values_list("quantity", flat=True)) == {10}
