"""Every write endpoint of the merchant dashboard, for every role.

A denied request must also change nothing, so each denied call is followed by a check
that the tables it could touch hold exactly what they held before.
"""

import pytest

from catalog.models import Product, ProductCategory
from inventory.models import Inventory
from merchants.models import Address, DeliveryZone, Merchant
from tests import factories
from tests.rows import rows

pytestmark = pytest.mark.django_db

ROLES = ["anonymous", "customer", "other_owner", "owner", "operator"]
# What the dashboard's writes could touch.
STATE = (
    Merchant,
    Merchant.categories.through,
    Address,
    DeliveryZone,
    ProductCategory,
    Product,
    Inventory,
)


@pytest.fixture
def world():
    owner = factories.user()
    other_owner = factories.user()
    grocery = factories.category(name="Grocery")
    shop = factories.merchant(owner=owner)
    factories.merchant(owner=other_owner)
    product = factories.product(merchant=shop, category=grocery)
    return {
        "users": {
            "anonymous": None,
            "customer": factories.user(),
            "other_owner": other_owner,
            "owner": owner,
            "operator": factories.user(is_staff=True),
        },
        "merchant": shop,
        "zone": factories.zone(merchant=shop),
        "category": grocery,
        "product": product,
        "stock": factories.stock(product=product, quantity=5),
        "spare_product": factories.product(merchant=shop, category=grocery),
    }


def square(lng=13.405, lat=52.52, d=0.01):
    return {
        "type": "Polygon",
        "coordinates": [
            [
                [lng - d, lat - d],
                [lng + d, lat - d],
                [lng + d, lat + d],
                [lng - d, lat + d],
                [lng - d, lat - d],
            ]
        ],
    }


def merchant_body():
    return {
        "name": "New Shop",
        "address": {
            "line1": "Street 1",
            "city": "Berlin",
            "postal_code": "10115",
            "location": {"type": "Point", "coordinates": [13.4, 52.5]},
        },
    }


# (name, method, url builder, body builder, expected status per role)
DENY_ALL_BUT_OWNER_AND_OPERATOR = {
    "anonymous": 401,
    "customer": 403,
    "other_owner": 403,
}
CASES = [
    (
        "create merchant",
        "post",
        lambda w: "/api/v1/merchants/",
        lambda w: merchant_body(),
        {"anonymous": 401, "customer": 201, "other_owner": 403, "owner": 403, "operator": 201},
    ),
    (
        "patch merchant",
        "patch",
        lambda w: f"/api/v1/merchants/{w['merchant'].pk}/",
        lambda w: {"name": "Changed"},
        {**DENY_ALL_BUT_OWNER_AND_OPERATOR, "owner": 200, "operator": 200},
    ),
    (
        "put merchant",
        "put",
        lambda w: f"/api/v1/merchants/{w['merchant'].pk}/",
        lambda w: merchant_body(),
        {**DENY_ALL_BUT_OWNER_AND_OPERATOR, "owner": 200, "operator": 200},
    ),
    (
        "delete merchant",
        "delete",
        lambda w: f"/api/v1/merchants/{w['merchant'].pk}/",
        lambda w: None,
        {**DENY_ALL_BUT_OWNER_AND_OPERATOR, "owner": 204, "operator": 204},
    ),
    (
        "create zone",
        "post",
        lambda w: f"/api/v1/merchants/{w['merchant'].pk}/delivery-zones/",
        lambda w: {"name": "Z", "area": square(), "delivery_fee": "1.00"},
        {**DENY_ALL_BUT_OWNER_AND_OPERATOR, "owner": 201, "operator": 201},
    ),
    (
        "patch zone",
        "patch",
        lambda w: f"/api/v1/merchants/{w['merchant'].pk}/delivery-zones/{w['zone'].pk}/",
        lambda w: {"delivery_fee": "9.00"},
        {**DENY_ALL_BUT_OWNER_AND_OPERATOR, "owner": 200, "operator": 200},
    ),
    (
        "put zone",
        "put",
        lambda w: f"/api/v1/merchants/{w['merchant'].pk}/delivery-zones/{w['zone'].pk}/",
        lambda w: {"name": "Z2", "area": square(), "delivery_fee": "3.00"},
        {**DENY_ALL_BUT_OWNER_AND_OPERATOR, "owner": 200, "operator": 200},
    ),
    (
        "delete zone",
        "delete",
        lambda w: f"/api/v1/merchants/{w['merchant'].pk}/delivery-zones/{w['zone'].pk}/",
        lambda w: None,
        {**DENY_ALL_BUT_OWNER_AND_OPERATOR, "owner": 204, "operator": 204},
    ),
    (
        "create category",
        "post",
        lambda w: "/api/v1/categories/",
        lambda w: {"name": "Toys", "slug": "toys"},
        {"anonymous": 401, "customer": 403, "other_owner": 403, "owner": 403, "operator": 201},
    ),
    (
        "patch category",
        "patch",
        lambda w: f"/api/v1/categories/{w['category'].pk}/",
        lambda w: {"name": "Food"},
        {"anonymous": 401, "customer": 403, "other_owner": 403, "owner": 403, "operator": 200},
    ),
    (
        "put category",
        "put",
        lambda w: f"/api/v1/categories/{w['category'].pk}/",
        lambda w: {"name": "Food", "slug": "food"},
        {"anonymous": 401, "customer": 403, "other_owner": 403, "owner": 403, "operator": 200},
    ),
    (
        "delete category",
        "delete",
        lambda w: f"/api/v1/categories/{factories.category().pk}/",
        lambda w: None,
        {"anonymous": 401, "customer": 403, "other_owner": 403, "owner": 403, "operator": 204},
    ),
    (
        "create product",
        "post",
        lambda w: "/api/v1/products/",
        lambda w: {
            "merchant_id": w["merchant"].pk,
            "category_id": w["category"].pk,
            "title": "Apples",
            "price": "2.00",
        },
        {**DENY_ALL_BUT_OWNER_AND_OPERATOR, "owner": 201, "operator": 201},
    ),
    (
        "patch product",
        "patch",
        lambda w: f"/api/v1/products/{w['product'].pk}/",
        lambda w: {"price": "3.50"},
        {**DENY_ALL_BUT_OWNER_AND_OPERATOR, "owner": 200, "operator": 200},
    ),
    (
        "put product",
        "put",
        lambda w: f"/api/v1/products/{w['product'].pk}/",
        lambda w: {"category_id": w["category"].pk, "title": "Pears", "price": "1.00"},
        {**DENY_ALL_BUT_OWNER_AND_OPERATOR, "owner": 200, "operator": 200},
    ),
    (
        "delete product",
        "delete",
        lambda w: f"/api/v1/products/{w['product'].pk}/",
        lambda w: None,
        {**DENY_ALL_BUT_OWNER_AND_OPERATOR, "owner": 204, "operator": 204},
    ),
    (
        "create inventory",
        "post",
        lambda w: "/api/v1/inventory/",
        lambda w: {"product_id": w["spare_product"].pk, "quantity": 3},
        {**DENY_ALL_BUT_OWNER_AND_OPERATOR, "owner": 201, "operator": 201},
    ),
    (
        "patch inventory",
        "patch",
        lambda w: f"/api/v1/inventory/{w['stock'].pk}/",
        lambda w: {"quantity": 50},
        {"anonymous": 401, "customer": 403, "other_owner": 404, "owner": 200, "operator": 200},
    ),
    (
        "put inventory",
        "put",
        lambda w: f"/api/v1/inventory/{w['stock'].pk}/",
        lambda w: {"quantity": 50, "low_stock_threshold": 2},
        {"anonymous": 401, "customer": 403, "other_owner": 404, "owner": 200, "operator": 200},
    ),
    (
        "delete inventory",
        "delete",
        lambda w: f"/api/v1/inventory/{w['stock'].pk}/",
        lambda w: None,
        {"anonymous": 401, "customer": 403, "other_owner": 404, "owner": 204, "operator": 204},
    ),
    (
        "adjust inventory",
        "post",
        lambda w: f"/api/v1/inventory/{w['stock'].pk}/adjust/",
        lambda w: {"delta": -2, "reason": "breakage"},
        {"anonymous": 401, "customer": 403, "other_owner": 404, "owner": 200, "operator": 200},
    ),
]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("case", CASES, ids=[case[0] for case in CASES])
def test_write_endpoint_by_role(world, as_user, case, role):
    _name, method, url, body, expected = case
    client = as_user(world["users"][role])
    target, payload = url(world), body(world)
    before = rows(*STATE)
    response = (
        getattr(client, method)(target, payload)
        if payload is not None
        else getattr(client, method)(target)
    )
    assert response.status_code == expected[role], response.content
    if response.status_code >= 400:
        assert "detail" in response.json()
        assert rows(*STATE) == before
    else:
        assert rows(*STATE) != before


READ_CASES = [
    (
        "inventory list",
        lambda w: "/api/v1/inventory/",
        {"anonymous": 401, "customer": 403, "other_owner": 200, "owner": 200, "operator": 200},
    ),
    (
        "inventory detail",
        lambda w: f"/api/v1/inventory/{w['stock'].pk}/",
        {"anonymous": 401, "customer": 403, "other_owner": 404, "owner": 200, "operator": 200},
    ),
    (
        "merchant stock",
        lambda w: f"/api/v1/merchants/{w['merchant'].pk}/inventory/",
        {"anonymous": 401, "customer": 403, "other_owner": 403, "owner": 200, "operator": 200},
    ),
    (
        "zone detail",
        lambda w: f"/api/v1/merchants/{w['merchant'].pk}/delivery-zones/{w['zone'].pk}/",
        {"anonymous": 401, "customer": 403, "other_owner": 403, "owner": 200, "operator": 200},
    ),
]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("case", READ_CASES, ids=[case[0] for case in READ_CASES])
def test_restricted_read_by_role(world, as_user, case, role):
    _name, url, expected = case
    response = as_user(world["users"][role]).get(url(world))
    assert response.status_code == expected[role]


def test_other_owner_inventory_list_shows_none_of_mine(world, as_user):
    rows = as_user(world["users"]["other_owner"]).get("/api/v1/inventory/").json()["results"]
    assert rows == []
