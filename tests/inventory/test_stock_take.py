"""`stock_take` outside an order: its guard on the lines it is given, and the stock a
refusal reports."""

import pytest
from django.db import transaction

from inventory.models import Inventory
from inventory.services import stock_take
from orders.services import OrderLine
from tests import factories
from tests.threads import behind_an_uncommitted_write

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


@pytest.mark.parametrize(("quantity", "available"), [(2, 2), (0, 0), (None, 0)])
def test_one_line_short_is_refused_in_one_statement_with_the_stock_it_saw(
    django_assert_num_queries, quantity, available
):
    """A single line short of stock is turned down by the statement that tried to take
    it, which also reads the stock it found (none for a product with no stock row)."""
    product = factories.product(merchant=factories.merchant(), price="1.00")
    if quantity is not None:
        factories.stock(product=product, quantity=quantity)
    with transaction.atomic(), django_assert_num_queries(1):
        shortages = stock_take(lines=[OrderLine(product.pk, 3)])
    assert shortages == [{"product_id": product.pk, "requested": 3, "available": available}]
    assert list(Inventory.objects.values_list("quantity", flat=True)) == (
        [] if quantity is None else [quantity]
    )


def test_one_line_in_stock_is_taken_in_one_statement(django_assert_num_queries):
    product = factories.product(merchant=factories.merchant(), price="1.00")
    factories.stock(product=product, quantity=3)
    with transaction.atomic(), django_assert_num_queries(1):
        assert stock_take(lines=[OrderLine(product.pk, 3)]) == []
    assert Inventory.objects.get().quantity == 0


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("meanwhile", "available"),
    [
        ("UPDATE inventory_inventory SET quantity = 2 WHERE product_id = %(id)s", 2),
        ("DELETE FROM inventory_inventory WHERE product_id = %(id)s", 0),
    ],
    ids=["taken", "deleted"],
)
def test_one_line_refused_after_waiting_reports_the_stock_left_by_the_writer_it_waited_for(
    meanwhile, available
):
    """The statement's snapshot had enough (6 for 5), a writer it waited for left less:
    the refusal reports what that writer left, not a guess from the snapshot."""
    product = factories.product(merchant=factories.merchant(), price="1.00")
    factories.stock(product=product, quantity=6)

    def take():
        with transaction.atomic():
            return stock_take(lines=[OrderLine(product.pk, 5)])

    shortages = behind_an_uncommitted_write(meanwhile, {"id": product.pk}, take)
    assert shortages == [{"product_id": product.pk, "requested": 5, "available": available}]
