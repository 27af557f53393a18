"""Cancels and placements over the same inventory rows, each thread on a connection of its
own: every path takes the rows in one order, so they queue instead of deadlocking."""

import random
from collections import Counter

import pytest
from django.contrib.gis.geos import Point

from inventory.models import Inventory
from orders.models import Order, OrderItem, OrderStatus
from orders.services import OrderLine, order_place, order_transition
from tests import factories
from tests.threads import run_in_threads

pytestmark = pytest.mark.django_db(transaction=True)

STOCK = 10_000


@pytest.fixture
def shop():
    merchant = factories.merchant()
    factories.zone(merchant=merchant, min_order="0.00")
    return merchant


def stocked_products(shop, count: int) -> list[int]:
    ids = []
    for _ in range(count):
        product = factories.product(merchant=shop, price="1.00")
        factories.stock(product=product, quantity=STOCK)
        ids.append(product.pk)
    return ids


def place(shop, buyer, lines: list[tuple[int, int]]) -> Order:
    return order_place(
        buyer=buyer,
        merchant_id=shop.pk,
        lines=[OrderLine(product_id, quantity) for product_id, quantity in lines],
        delivery_address={
            "line1": "A",
            "city": "Berlin",
            "postal_code": "10115",
            "location": Point(shop.location.x, shop.location.y, srid=4326),
        },
    )


def cancel(order: Order) -> Order:
    return order_transition(order_id=order.pk, actor=order.buyer, to_status=OrderStatus.CANCELLED)


def stock_of(product_ids) -> dict[int, int]:
    return dict(
        Inventory.objects.filter(product_id__in=product_ids).values_list("product_id", "quantity")
    )


def taken_by_live_orders(product_ids) -> Counter:
    """What the orders that still hold stock took: every status but cancelled and rejected."""
    taken = Counter()
    rows = OrderItem.objects.filter(
        product_id__in=product_ids,
        order__status__in=[
            OrderStatus.CONFIRMED,
            OrderStatus.PREPARING,
            OrderStatus.READY,
            OrderStatus.PICKED_UP,
            OrderStatus.DELIVERED,
        ],
    ).values_list("product_id", "quantity")
    for product_id, quantity in rows:
        taken[product_id] += quantity
    return taken


def test_cancels_and_placements_in_opposite_line_orders_never_deadlock(shop):
    """Rounds of cancels of orders whose lines run in opposite orders, raced against new
    orders in opposite orders too; the stock is conserved exactly."""
    product_ids = stocked_products(shop, 12)
    buyer = factories.user()
    rng = random.Random(16)
    placed: Counter = Counter()
    returned: Counter = Counter()
    for _ in range(4):
        # Every order spans every product, half of them in the reverse order.
        lines = [(product_id, rng.randint(1, 3)) for product_id in product_ids]
        to_cancel = [place(shop, buyer, lines if i % 2 else lines[::-1]) for i in range(12)]
        for order in to_cancel:
            assert order.status == OrderStatus.CONFIRMED
            placed.update({item.product_id: item.quantity for item in order.items.all()})

        def placing(index: int, lines=lines):
            return place(shop, buyer, lines if index % 2 else lines[::-1])

        outcomes = run_in_threads(
            *[lambda order=order: cancel(order) for order in to_cancel],
            *[lambda index=index: placing(index) for index in range(6)],
        )
        for order in outcomes[: len(to_cancel)]:
            assert order.status == OrderStatus.CANCELLED
            returned.update({item.product_id: item.quantity for item in order.items.all()})
        for order in outcomes[len(to_cancel) :]:
            assert order.status == OrderStatus.CONFIRMED
            placed.update({item.product_id: item.quantity for item in order.items.all()})

    assert sum(returned.values()) > 0
    expected = {p: STOCK - placed[p] + returned[p] for p in product_ids}
    assert stock_of(product_ids) == expected
    assert expected == {p: STOCK - taken_by_live_orders(product_ids)[p] for p in product_ids}
