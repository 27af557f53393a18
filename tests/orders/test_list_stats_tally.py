"""Operators' order stats come from the status tally, which stays exact under every
write: placements, transitions, concurrent ones, deletions and its own compaction."""

from decimal import Decimal
from functools import partial

import pytest
from django.contrib.gis.geos import Point
from django.db import connection
from django.db.models import Count, Sum

from orders.models import REVENUE_STATUSES, Order, OrderStatus, OrderStatusTally
from orders.selectors import order_stats
from orders.services import OrderLine, order_place, order_transition
from tests import factories
from tests.threads import run_in_threads


def counted_from_orders() -> dict:
    """The stats as counting every order says."""
    counts = dict(Order.objects.values_list("status").annotate(n=Count("id")).order_by())
    revenue = Order.objects.filter(status__in=REVENUE_STATUSES).aggregate(t=Sum("total"))["t"]
    return {
        "by_status": {status.value: counts.get(status.value, 0) for status in OrderStatus},
        "orders": sum(counts.values()),
        "revenue": revenue or Decimal("0.00"),
    }


def compact():
    with connection.cursor() as cursor:
        cursor.execute("SELECT orders_tally_compact()")


def a_shop(stock: int):
    merchant = factories.merchant()
    factories.zone(merchant=merchant, min_order="0.00")
    product = factories.product(merchant=merchant, price="2.50")
    factories.stock(product=product, quantity=stock)
    return merchant, product


def place(shop, buyer=None):
    merchant, product = shop
    return order_place(
        buyer=buyer or factories.user(),
        merchant_id=merchant.pk,
        lines=[OrderLine(product.pk, 1)],
        delivery_address={
            "line1": "A",
            "city": "Berlin",
            "postal_code": "10115",
            "location": Point(merchant.location.x, merchant.location.y, srid=4326),
        },
    )


@pytest.mark.django_db
def test_the_tally_follows_placements_transitions_and_deletions():
    shop = a_shop(stock=3)
    merchant, _ = shop
    assert order_stats(merchant_id=None) == counted_from_orders()
    orders = [place(shop) for _ in range(4)]  # the fourth finds no stock: rejected
    order_transition(order_id=orders[0].pk, actor=merchant.owner, to_status="preparing")
    order_transition(order_id=orders[1].pk, actor=merchant.owner, to_status="cancelled")
    Order.objects.filter(pk=orders[2].pk).update(total=Decimal("9.99"))
    stats = order_stats(merchant_id=None)
    assert stats == counted_from_orders()
    assert stats["by_status"]["rejected"] == 1
    assert stats["by_status"]["cancelled"] == 1
    compact()
    assert OrderStatusTally.objects.count() <= len(OrderStatus)
    assert order_stats(merchant_id=None) == counted_from_orders()
    Order.objects.filter(pk=orders[3].pk).delete()
    assert order_stats(merchant_id=None) == counted_from_orders()
    assert order_stats(merchant_id=merchant.pk) == counted_from_orders()


@pytest.mark.django_db(transaction=True)
def test_the_tally_stays_exact_under_concurrent_writes():
    shop = a_shop(stock=40)
    merchant, _ = shop
    placed = [place(shop) for _ in range(12)]

    def work(index):
        if index % 3 == 0:
            place(shop)
        elif index % 3 == 1:
            order_transition(order_id=placed[index].pk, actor=merchant.owner, to_status="cancelled")
        else:
            order_transition(order_id=placed[index].pk, actor=merchant.owner, to_status="preparing")
        if index % 4 == 0:
            compact()

    run_in_threads(*[partial(work, index) for index in range(12)])
    assert order_stats(merchant_id=None) == counted_from_orders()
