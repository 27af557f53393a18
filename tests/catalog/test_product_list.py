"""GET /products/ sends each product's stored JSON: what the product serializer says of
it, for every caller and filter."""

import pytest
from django.db import connection
from rest_framework.renderers import JSONRenderer

from catalog.models import Product
from catalog.serializers import ProductOutputSerializer
from catalog.services import product_update
from tests import factories
from tests.market import api_client_as

pytestmark = pytest.mark.django_db


def _expected(products) -> list[dict]:
    return [dict(row) for row in ProductOutputSerializer(products, many=True).data]


def test_listed_products_are_what_the_serializer_says(django_assert_max_num_queries):
    owner = factories.user()
    shop = factories.merchant(owner=owner)
    other = factories.merchant()
    grocery = factories.category()
    factories.product(merchant=shop, category=grocery, title='Bread \u2028 "rye"', price="2.50")
    factories.product(merchant=shop, title="Hidden", is_published=False)
    changed = factories.product(merchant=other, title="Milk", price="1.05")
    product_update(product=changed, data={"price": "1.10", "title": "Milk, whole"})
    callers = {
        "anonymous": api_client_as(None),
        "owner": api_client_as(owner),
        "operator": api_client_as(factories.user(is_staff=True)),
    }
    visible = {
        "anonymous": Product.objects.filter(is_published=True),
        "owner": Product.objects.filter(is_published=True) | Product.objects.filter(merchant=shop),
        "operator": Product.objects.all(),
    }
    for role, client in callers.items():
        with django_assert_max_num_queries(4):
            body = client.get("/api/v1/products/").json()
        assert body["results"] == _expected(visible[role].order_by("id")), role
        assert body["count"] == visible[role].count()
    filtered = callers["operator"].get(
        "/api/v1/products/", {"merchant_id": shop.pk, "category": grocery.pk}
    )
    assert filtered.json()["results"] == _expected(
        Product.objects.filter(merchant=shop, category=grocery)
    )


def test_a_product_is_what_the_serializer_says_to_whoever_may_see_it():
    owner = factories.user()
    shop = factories.merchant(owner=owner)
    shown = factories.product(merchant=shop, title="Oat \u2029 milk", price="3.30")
    hidden = factories.product(merchant=shop, title="Draft", is_published=False)
    anonymous, mine = api_client_as(None), api_client_as(owner)
    for product in (shown, hidden):
        expected = dict(ProductOutputSerializer(product).data)
        assert mine.get(f"/api/v1/products/{product.pk}/").json() == expected
    assert anonymous.get(f"/api/v1/products/{shown.pk}/").json() == dict(
        ProductOutputSerializer(shown).data
    )
    assert anonymous.get(f"/api/v1/products/{hidden.pk}/").status_code == 404


def test_each_owner_sees_own_unpublished_products_and_no_one_elses():
    owners = [factories.user() for _ in range(2)]
    drafts = [
        factories.product(merchant=factories.merchant(owner=owner), is_published=False)
        for owner in owners
    ]
    for owner, own, other in zip(owners, drafts, reversed(drafts), strict=True):
        client = api_client_as(owner)
        listed = [row["id"] for row in client.get("/api/v1/products/").json()["results"]]
        assert listed == [own.pk]
        assert client.get(f"/api/v1/products/{own.pk}/").status_code == 200
        assert client.get(f"/api/v1/products/{other.pk}/").status_code == 404
    assert api_client_as(None).get("/api/v1/products/").json()["count"] == 0


def test_a_product_is_the_bytes_drf_renders_by_a_prepared_statement():
    """The detail sends the stored JSON as it is, and reads it by a statement planned once
    per connection (PostgreSQL took several times its run to plan it)."""
    product = factories.product(
        merchant=factories.merchant(), title='Rye \u2028 "dark" \\ <b>', price="2.05"
    )
    expected = JSONRenderer().render(ProductOutputSerializer(product).data)
    client = api_client_as(None)
    for _ in range(3):
        answer = client.get(f"/api/v1/products/{product.pk}/")
        assert answer.content == expected
        assert answer["Content-Type"] == "application/json"
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements WHERE NOT from_sql")
        prepared = [text for (text,) in cursor.fetchall() if "catalog_product" in text]
    assert len(prepared) == 1, prepared
