"""An order whose amounts its columns cannot hold (numeric(12,2)) is refused with a 400
naming its items, before anything is written or taken; one that just fits is placed."""

from decimal import Decimal

import pytest

from inventory.models import Inventory
from orders.models import Order
from tests import factories
from tests.market import ORDERS, order_body

pytestmark = pytest.mark.django_db

# The most a product may cost (numeric(10,2)), and the most an order's amounts may be.
PRICE_MAX = "99999999.99"
AMOUNT_MAX = Decimal("9999999999.99")


def stocked(market, *, price: str, quantity: int = 1000):
    product = factories.product(merchant=market["shop"], price=price)
    factories.stock(product=product, quantity=quantity)
    return product


def assert_refused(market, body, django_assert_num_queries, *, message: str) -> None:
    stock_before = dict(Inventory.objects.values_list("product_id", "quantity"))
    # Refused by the read of the order's context alone, as every validation is.
    with django_assert_num_queries(1):
        response = market["client"].post(ORDERS, body)
    assert response.status_code == 400
    assert response.json() == {"items": [message]}
    assert not Order.objects.exists()
    assert dict(Inventory.objects.values_list("product_id", "quantity")) == stock_before


def test_a_line_total_past_its_column_is_refused_naming_items(market, django_assert_num_queries):
    yacht = stocked(market, price=PRICE_MAX)
    assert_refused(
        market,
        order_body(market, (yacht, 999)),
        django_assert_num_queries,
        message=f"The total of the line of product {yacht.pk} would pass 9,999,999,999.99.",
    )


def test_a_subtotal_past_its_column_is_refused_though_each_line_fits(
    market, django_assert_num_queries
):
    # Each line is 5,999,999,999.40; together they are 11,999,999,998.80.
    first, second = stocked(market, price=PRICE_MAX), stocked(market, price=PRICE_MAX)
    assert_refused(
        market,
        order_body(market, (first, 60), (second, 60)),
        django_assert_num_queries,
        message="The order's subtotal would pass 9,999,999,999.99.",
    )


def test_a_delivery_fee_taking_the_total_past_its_column_is_refused(
    market, django_assert_num_queries
):
    # 9,999,999,999.00 + 0.99: the subtotal is the most the column holds; the fee of 1.50
    # takes the total past it.
    yacht, dinghy = stocked(market, price=PRICE_MAX), stocked(market, price="0.99")
    assert_refused(
        market,
        order_body(market, (yacht, 100), (dinghy, 1)),
        django_assert_num_queries,
        message="The order's total would pass 9,999,999,999.99.",
    )


def test_an_order_whose_total_is_the_most_its_column_holds_is_placed(market):
    # 9,899,999,999.01 + 99,999,999.48 + the fee of 1.50 = 9,999,999,999.99.
    yacht, tender = stocked(market, price=PRICE_MAX), stocked(market, price="99999999.48")
    response = market["client"].post(ORDERS, order_body(market, (yacht, 99), (tender, 1)))
    assert response.status_code == 201, response.json()
    assert response.json()["total"] == "9999999999.99"
    assert Order.objects.get().total == AMOUNT_MAX
    assert Inventory.objects.get(product=yacht).quantity == 1000 - 99
