"""Real concurrent orders, each thread with its own database connection."""

from functools import partial

import pytest
from django.contrib.gis.geos import Point

from inventory.models import Inventory
from orders.models import IdempotencyKey, Order, OrderStatus
from orders.services import OrderLine, order_place
from tests import factories
from tests.threads import run_in_threads

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def shop():
    merchant = factories.merchant()
    factories.zone(merchant=merchant, min_order="0.00")
    return merchant


def address(shop):
    return {
        "line1": "A",
        "city": "Berlin",
        "postal_code": "10115",
        "location": Point(shop.location.x, shop.location.y, srid=4326),
    }


def run_concurrently(count, work):
    return run_in_threads(*[partial(work, index) for index in range(count)])


def test_fifty_buyers_for_twenty_items_sell_exactly_twenty(shop):
    product = factories.product(merchant=shop, price="1.00")
    factories.stock(product=product, quantity=20)
    buyers = [factories.user() for _ in range(50)]

    def buy(index):
        order = order_place(
            buyer=buyers[index],
            merchant_id=shop.pk,
            lines=[OrderLine(product.pk, 1)],
            delivery_address=address(shop),
        )
        return order.status

    statuses = run_concurrently(50, buy)
    assert statuses.count(OrderStatus.CONFIRMED) == 20
    assert statuses.count(OrderStatus.REJECTED) == 30
    assert Inventory.objects.get(product=product).quantity == 0
    assert Order.objects.filter(status=OrderStatus.CONFIRMED).count() == 20


def test_opposite_line_orders_never_deadlock(shop):
    a = factories.product(merchant=shop, price="1.00")
    b = factories.product(merchant=shop, price="1.00")
    factories.stock(product=a, quantity=30)
    factories.stock(product=b, quantity=30)
    buyer = factories.user()

    def buy(index):
        lines = [OrderLine(a.pk, 1), OrderLine(b.pk, 1)]
        if index % 2:
            lines.reverse()
        return order_place(
            buyer=buyer, merchant_id=shop.pk, lines=lines, delivery_address=address(shop)
        ).status

    statuses = run_concurrently(40, buy)
    confirmed = statuses.count(OrderStatus.CONFIRMED)
    assert confirmed == 30
    assert Inventory.objects.get(product=a).quantity == 0
    assert Inventory.objects.get(product=b).quantity == 0


def test_concurrent_requests_with_one_key_make_one_order(shop):
    product = factories.product(merchant=shop, price="1.00")
    factories.stock(product=product, quantity=100)
    buyer = factories.user()

    def buy(index):
        return order_place(
            buyer=buyer,
            merchant_id=shop.pk,
            lines=[OrderLine(product.pk, 2)],
            delivery_address=address(shop),
            idempotency_key="same-key",
        ).pk

    order_ids = run_concurrently(10, buy)
    assert len(set(order_ids)) == 1
    assert Order.objects.count() == 1
    assert IdempotencyKey.objects.get().order_id == order_ids[0]
    assert Inventory.objects.get(product=product).quantity == 98
