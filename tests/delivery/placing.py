"""Orders placed for the delivery tests, and setup run in a thread for those that call
the ASGI application from their own event loop."""

from asgiref.sync import sync_to_async
from django.contrib.gis.geos import Point
from django.db import connections

from orders.services import OrderLine, order_place
from tests import factories


def in_thread(function):
    """Run test setup in a worker thread, closing its connection so teardown can drop
    the test database."""

    def run(*args):
        try:
            return function(*args)
        finally:
            connections.close_all()

    return sync_to_async(run)


def stocked_shop(*, price: str = "2.00", quantity: int = 5):
    """A merchant delivering anywhere near it with no minimum, and one stocked product."""
    shop = factories.merchant()
    factories.zone(merchant=shop, min_order="0")
    item = factories.product(merchant=shop, price=price)
    factories.stock(product=item, quantity=quantity)
    return shop, item


def one_item_order(*, shop, item, buyer, east_deg: float = 0.01):
    """A confirmed order of one `item`, delivered `east_deg` east of the shop."""
    return order_place(
        buyer=buyer,
        merchant_id=shop.pk,
        lines=[OrderLine(item.pk, 1)],
        delivery_address={
            "line1": "x",
            "city": "B",
            "postal_code": "1",
            "location": Point(shop.location.x + east_deg, shop.location.y, srid=4326),
        },
    )


def order_placed():
    """A confirmed order of one item, a short way from its shop."""
    shop, item = stocked_shop()
    return one_item_order(shop=shop, item=item, buyer=factories.user())
