"""The small marketplace most order, dispatch and limit tests start from."""

from rest_framework.test import APIClient

from tests import factories

ORDERS = "/api/v1/orders/"


def api_client_as(user) -> APIClient:
    """`api_client_as(None)` is an anonymous client; otherwise one authenticated with the
    user's token, as real apps call the API."""
    client = APIClient()
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Token {user.auth_token.key}")
    return client


def build_market(as_user) -> dict:
    """A merchant delivering around its shop, two stocked products, and a customer."""
    owner = factories.user()
    shop = factories.merchant(owner=owner)
    near = factories.zone(merchant=shop, fee="2.50", min_order="5.00")
    # cheaper and smaller: it covers the shop's street, not the big zone's corners
    factories.zone(
        merchant=shop,
        fee="1.50",
        min_order="5.00",
        area=factories.square(lat=shop.location.y, lng=shop.location.x, half_side_deg=0.005),
    )
    bread = factories.product(merchant=shop, title="Bread", price="3.00")
    milk = factories.product(merchant=shop, title="Milk", price="1.25")
    factories.stock(product=bread, quantity=20)
    factories.stock(product=milk, quantity=10)
    customer = factories.user()
    customer.email = "customer@example.org"
    customer.save(update_fields=["email"])
    return {
        "shop": shop,
        "zone": near,
        "bread": bread,
        "milk": milk,
        "owner": owner,
        "customer": customer,
        "client": as_user(customer),
        "owner_client": as_user(owner),
    }


def order_body(market, *lines, location=None):
    shop = market["shop"]
    return {
        "merchant_id": shop.pk,
        "items": [{"product_id": p.pk, "quantity": q} for p, q in lines],
        "delivery_address": {
            "line1": "Karl-Marx-Allee 1",
            "city": "Berlin",
            "postal_code": "10178",
            "location": location
            or {"type": "Point", "coordinates": [shop.location.x + 0.001, shop.location.y]},
        },
    }
