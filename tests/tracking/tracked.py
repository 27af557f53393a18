"""The order the tracking and stream tests follow."""

from delivery.services import courier_create
from orders.models import Order
from tests import factories
from tests.market import order_body


def order_with_courier(market) -> tuple:
    """(order, courier, the courier's user): an order of the market's customer, given a
    new courier, Kim, on a scooter."""
    placed = market["client"].post("/api/v1/orders/", order_body(market, (market["bread"], 2)))
    assert placed.status_code == 201, placed.content
    courier_user = factories.user()
    courier = courier_create(
        user=courier_user, name="Kim", vehicle="scooter", capacity=2, status="available"
    )
    order = Order.objects.get(pk=placed.json()["id"])
    Order.objects.filter(pk=order.pk).update(courier=courier)
    return order, courier, courier_user
