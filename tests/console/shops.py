"""Merchants with a live order, for the console's tests."""

from django.contrib.gis.geos import Point

from orders.services import OrderLine, order_place
from tests import factories
from tests.market import order_body


def shop_with_order(name: str, lat: float):
    """(owner, merchant, order): a new merchant at `lat` with one confirmed order."""
    owner = factories.user()
    shop = factories.merchant(owner=owner, name=name, lat=lat)
    factories.zone(merchant=shop, min_order="1.00")
    bread = factories.product(merchant=shop, title=f"Bread of {name}", price="3.00")
    factories.stock(product=bread, quantity=5)
    address = order_body({"shop": shop}, (bread, 1))["delivery_address"]
    point = Point(*address["location"]["coordinates"], srid=4326)
    order = order_place(
        buyer=factories.user(),
        merchant_id=shop.pk,
        lines=[OrderLine(product_id=bread.pk, quantity=1)],
        delivery_address={**address, "location": point},
    )
    return owner, shop, order
