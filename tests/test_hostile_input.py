"""Input schemathesis is unlikely to invent: each gets a 4xx in the contract's shape and
changes nothing."""

import json

import pytest

from catalog.models import Product
from merchants.models import DeliveryZone
from orders.models import Order
from tests import factories
from tests.market import ORDERS, order_body

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e308", "abc", "", "0x10"])
@pytest.mark.parametrize("field", ["lat", "lng"])
def test_non_numbers_for_coordinates(api_client, field, value):
    params = {"lat": "52.5", "lng": "13.4", field: value}
    response = api_client.get("/api/v1/products/nearby/", params)
    assert response.status_code == 400
    assert field in response.json()


@pytest.mark.parametrize("radius", ["0", "-1", "1e9", "50000.01"])
def test_bad_radius(api_client, radius):
    response = api_client.get(
        "/api/v1/merchants/nearby/", {"lat": 52.5, "lng": 13.4, "radius": radius}
    )
    assert response.status_code == 400
    assert "radius" in response.json()


def test_polygon_with_100000_vertices_is_refused(as_user, settings):
    settings.REQUEST_BODY_MAX_BYTES = 50 * 1024 * 1024  # reach the geometry check itself
    owner = factories.user()
    shop = factories.merchant(owner=owner)
    ring = [[13.0 + i * 1e-6, 52.0 + (i % 2) * 1e-6] for i in range(99_999)] + [[13.0, 52.0]]
    response = as_user(owner).post(
        f"/api/v1/merchants/{shop.pk}/delivery-zones/",
        {
            "name": "huge",
            "delivery_fee": "1.00",
            "area": {"type": "Polygon", "coordinates": [ring]},
        },
    )
    assert response.status_code == 400
    assert "area" in response.json()
    assert not DeliveryZone.objects.exists()


@pytest.mark.parametrize(
    ("page", "status"),
    [("0", 400), ("-1", 400), ("1000000000", 404), ("10000000000", 400), ("1.5", 400)],
)
def test_page_numbers(api_client, page, status):
    factories.category()
    response = api_client.get("/api/v1/categories/", {"page": page})
    assert response.status_code == status
    assert response.json()


@pytest.mark.parametrize("quantity", [0, -1, 1000, 10**12, 1.5, None, "many"])
def test_order_quantities(market, quantity):
    body = order_body(market, (market["bread"], 1))
    body["items"][0]["quantity"] = quantity
    response = market["client"].post(ORDERS, body)
    assert response.status_code == 400
    assert "items" in response.json()
    assert not Order.objects.exists()


@pytest.mark.parametrize(
    "q",
    [
        "' OR 1=1 --",
        "'); DROP TABLE catalog_product; --",
        "%_%",
        "\\\\",
        "ünïcödé 🚲",
        "\u202e\u0000",
        "a" * 200,
        "<script>alert(1)</script>",
    ],
)
def test_sql_and_unicode_in_queries_are_only_text(api_client, q):
    shop = factories.merchant()
    factories.product(merchant=shop, title="Plain Bread")
    search = api_client.get("/api/v1/search/products/", {"q": q})
    suggest = api_client.get("/api/v1/search/suggest/", {"q": q})
    assert search.status_code in (200, 400)
    assert suggest.status_code in (200, 400)
    assert Product.objects.filter(title="Plain Bread").exists()


def test_ten_megabyte_body_is_413(market):
    payload = json.dumps({**order_body(market, (market["bread"], 2)), "pad": "x" * 10_000_000})
    response = market["client"].post(ORDERS, data=payload, content_type="application/json")
    assert response.status_code == 413
    assert "detail" in response.json()
    assert not Order.objects.exists()


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/xml",
        "multipart/form-data; boundary=x",
        "application/x-www-form-urlencoded",
    ],
)
def test_wrong_content_types_are_415(market, content_type):
    response = market["client"].post(ORDERS, data="merchant_id=1", content_type=content_type)
    assert response.status_code == 415
    assert "detail" in response.json()
    assert not Order.objects.exists()
