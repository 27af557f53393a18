"""Deliveries racing on real connections: none of their sums is lost, neither in a day
nor in the merchant's running totals over days, and two orders of one merchant with the
same products in opposite order never deadlock."""

import contextlib
import threading
from datetime import UTC, date, datetime
from functools import partial

import pytest
from django.db import transaction
from django.utils import timezone

from analytics.models import MerchantDay, PlatformDay, ProductDay
from orders.models import OrderStatus
from orders.services import OrderLine, order_place, order_transition
from tests import factories
from tests.analytics.test_rollups import shop_selling, wrong_running_totals
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


def test_concurrent_deliveries_of_one_merchant_on_different_days_all_count(monkeypatch):
    """Each delivery adds to the running totals of its day and of the merchant's later
    days, from what it sees of the others. Here both have added, uncommitted, before
    either commits, unless the second waits for the first (the merchant's lock): then
    the first gives up waiting for it and commits alone."""
    selling = shop_selling(price="3.20")
    shop, product, operator = selling.shop, selling.product, selling.operator
    clocks = threading.local()
    monkeypatch.setattr(timezone, "now", lambda: getattr(clocks, "now", datetime.now(UTC)))
    first, second, third = (
        order_place(
            buyer=factories.user(),
            merchant_id=shop.pk,
            lines=[OrderLine(product.pk, quantity)],
            delivery_address=selling.address,
        )
        for quantity in (1, 2, 4)
    )
    for order in (first, second, third):
        for step in (OrderStatus.PREPARING, OrderStatus.READY, OrderStatus.PICKED_UP):
            order_transition(order_id=order.pk, actor=operator, to_status=step)
    # A day already kept, before both.
    clocks.now = datetime(2026, 6, 1, 9, tzinfo=UTC)
    order_transition(order_id=first.pk, actor=operator, to_status=OrderStatus.DELIVERED)
    both_added = threading.Barrier(2, timeout=3)

    def deliver(order_id: int, at: datetime) -> None:
        clocks.now = at
        with transaction.atomic():
            order_transition(order_id=order_id, actor=operator, to_status=OrderStatus.DELIVERED)
            with contextlib.suppress(threading.BrokenBarrierError):
                both_added.wait()

    run_in_threads(
        # Either side of a UTC midnight.
        partial(deliver, second.pk, datetime(2026, 6, 2, 23, 59, 59, tzinfo=UTC)),
        partial(deliver, third.pk, datetime(2026, 6, 3, 0, 0, 1, tzinfo=UTC)),
    )
    assert list(
        MerchantDay.objects.order_by("day").values_list("day", "orders", "orders_to_date")
    ) == [(date(2026, 6, 1), 1, 1), (date(2026, 6, 2), 1, 2), (date(2026, 6, 3), 1, 3)]
    assert wrong_running_totals() == []
