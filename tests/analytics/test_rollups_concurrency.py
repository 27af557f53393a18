"""Deliveries racing on real connections: none of their sums is lost, and two orders of
one merchant with the same products in opposite order never deadlock."""

from functools import partial

import pytest

from analytics.models import MerchantDay, PlatformDay, ProductDay
from orders.models import OrderStatus
from orders.services import OrderLine, order_place, order_transition
from tests import factories
from tests.threads import run_in_threads

pytestmark = pytest.mark.django_db(transaction=True)

ORDERS = 12


def test_concurrent_deliveries_of_one_merchant_on_one_day_all_count():
    shop = factories.merchant()
    factories.zone(merchant=shop, min_order="0")
    a, b = (factories.product(merchant=shop, price=price) for price in ("1.10", "2.35"))
    for product in (a, b):
        factories.stock(product=product, quantity=1000)
    operator = factories.user(is_staff=True)
    address = factories.delivery_address(near=shop)
    orders = [
        order_place(
            buyer=factories.user(),
            merchant_id=shop.pk,
            # Half name the products one way round, half the other.
            lines=[OrderLine(a.pk, 1), OrderLine(b.pk, 2)][:: 1 if index % 2 else -1],
            delivery_address=address,
        )
        for index in range(ORDERS)
    ]
    for order in orders:
        for step in (OrderStatus.PREPARING, OrderStatus.READY, OrderStatus.PICKED_UP):
            order_transition(order_id=order.pk, actor=operator, to_status=step)

    def deliver(order_id: int) -> None:
        order_transition(order_id=order_id, actor=operator, to_status=OrderStatus.DELIVERED)

    run_in_threads(*[partial(deliver, order.pk) for order in orders])
    total = sum(order.total for order in orders)
    assert [(d.orders, d.revenue) for d in MerchantDay.objects.all()] == [(ORDERS, total)]
    assert [(d.orders, d.revenue) for d in PlatformDay.objects.all()] == [(ORDERS, total)]
    assert sorted((p.product_id, p.units, p.revenue) for p in ProductDay.objects.all()) == [
        (a.pk, ORDERS, a.price * ORDERS),
        (b.pk, 2 * ORDERS, b.price * 2 * ORDERS),
    ]
