"""A month of orders with known random contents, for the reports' tests."""

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.contrib.gis.geos import Point
from django.db import connection

from analytics.services import rollups_rebuild
from merchants.models import Address
from orders.models import Order, OrderItem, OrderStatus, OrderStatusChange
from tests import factories


def build_history():
    """~300 orders over March 2026, most delivered, some failed (and returned since),
    with known random contents."""
    rng = random.Random(2026)
    buyer = factories.user()
    shops = [factories.merchant(name=f"Shop {i}") for i in range(4)]
    products = {
        s.pk: [
            factories.product(merchant=s, price=f"{rng.randint(100, 2000) / 100:.2f}")
            for _ in range(6)
        ]
        for s in shops
    }
    address = Address.objects.create(
        line1="x", city="B", postal_code="1", location=Point(13.4, 52.5, srid=4326)
    )
    orders, items = [], []
    for _ in range(300):
        shop = rng.choice(shops)
        status = (
            "delivered"
            if rng.random() < 0.75
            else rng.choice(["cancelled", "confirmed", "failed", "returned"])
        )
        created = datetime(2026, 3, 1, tzinfo=UTC) + timedelta(
            days=rng.choice([d for d in range(31) if d not in (9, 10, 11)]),  # an empty gap
            minutes=rng.randint(0, 1380),
        )
        lines = rng.sample(products[shop.pk], rng.randint(1, 3))
        chosen = [(p, rng.randint(1, 4)) for p in lines]
        subtotal = sum((p.price * q for p, q in chosen), Decimal("0"))
        fee = Decimal(rng.choice(["0.00", "1.99", "2.50"]))
        order = Order(
            buyer=buyer,
            merchant=shop,
            delivery_address=address,
            status=status,
            subtotal=subtotal,
            delivery_fee=fee,
            total=subtotal + fee,
        )
        order.created = created
        order.delivered = (
            created + timedelta(minutes=rng.randint(12, 95)) if status == "delivered" else None
        )
        # Failed the day it was placed or one of the next two: across month ends too.
        order.failed_at = (
            created + timedelta(minutes=rng.randint(10, 2 * 24 * 60))
            if status in ("failed", "returned")
            else None
        )
        order.chosen = chosen
        orders.append(order)
    Order.objects.bulk_create(orders)
    for order in orders:
        order.created_at, order.delivered_at = order.created, order.delivered
    # The times are the history's, not now: one statement (an UPDATE of each order would
    # run the orders' statement triggers three hundred times, and `bulk_update` spends half
    # a second building its CASE expressions).
    with connection.cursor() as cursor:
        cursor.execute(
            """UPDATE orders_order o SET created_at = v.created_at, delivered_at = v.delivered_at
               FROM unnest(%s::bigint[], %s::timestamptz[], %s::timestamptz[])
                    AS v(id, created_at, delivered_at)
               WHERE o.id = v.id""",
            [
                [o.pk for o in orders],
                [o.created_at for o in orders],
                [o.delivered_at for o in orders],
            ],
        )
    for order in orders:
        for product, quantity in order.chosen:
            items.append(
                OrderItem(
                    order=order,
                    product=product,
                    title=product.title,
                    unit_price=product.price,
                    quantity=quantity,
                    line_total=product.price * quantity,
                )
            )
    OrderItem.objects.bulk_create(items)
    _failures_record([o for o in orders if o.failed_at])
    # Written without their transitions, which keep the rollups the reports read.
    rollups_rebuild()
    return {"orders": orders, "shops": shops, "items": items}


def _failures_record(orders: list[Order]) -> None:
    """The status changes of failed orders, at the times they failed (returned ones
    also at their return, an hour later, which the reports do not count)."""
    changes = [
        OrderStatusChange(
            order=order, from_status=OrderStatus.PICKED_UP, to_status=OrderStatus.FAILED
        )
        for order in orders
    ] + [
        OrderStatusChange(
            order=order, from_status=OrderStatus.FAILED, to_status=OrderStatus.RETURNED
        )
        for order in orders
        if order.status == OrderStatus.RETURNED
    ]
    OrderStatusChange.objects.bulk_create(changes)
    times = [
        change.order.failed_at
        + (timedelta(hours=1) if change.to_status == OrderStatus.RETURNED else timedelta(0))
        for change in changes
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            """UPDATE orders_orderstatuschange c SET created_at = v.created_at
               FROM unnest(%s::bigint[], %s::timestamptz[]) AS v(id, created_at)
               WHERE c.id = v.id""",
            [[change.pk for change in changes], times],
        )
