import itertools
import string

import pytest
from rest_framework.renderers import JSONRenderer

from catalog.models import PRODUCT_DESCRIPTION_MAX_LENGTH, Product, ProductCategory
from catalog.serializers import CategorySerializer
from tests import factories

pytestmark = pytest.mark.django_db

PRODUCTS = "/api/v1/products/"
CATEGORIES = "/api/v1/categories/"


def test_product_shape(as_user):
    shop = factories.merchant()
    item = factories.product(merchant=shop, title="Rye Bread", price="3.20")
    body = as_user(None).get(f"{PRODUCTS}{item.pk}/").json()
    assert set(body) == {
        "id",
        "merchant_id",
        "category_id",
        "title",
        "description",
        "price",
        "is_published",
        "created_at",
        "updated_at",
    }
    assert body["price"] == "3.20"
    assert body["merchant_id"] == shop.pk


def test_anyone_sees_published_products_of_active_merchants_only(as_user):
    shop = factories.merchant()
    closed = factories.merchant(is_active=False)
    visible = factories.product(merchant=shop)
    factories.product(merchant=shop, is_published=False)
    factories.product(merchant=closed)
    ids = [p["id"] for p in as_user(None).get(PRODUCTS).json()["results"]]
    assert ids == [visible.pk]


def test_owner_also_sees_own_unpublished_products(as_user):
    owner = factories.user()
    shop = factories.merchant(owner=owner)
    draft = factories.product(merchant=shop, is_published=False)
    other_draft = factories.product(merchant=factories.merchant(), is_published=False)
    client = as_user(owner)
    ids = [p["id"] for p in client.get(PRODUCTS).json()["results"]]
    assert draft.pk in ids
    assert other_draft.pk not in ids
    assert client.get(f"{PRODUCTS}{draft.pk}/").status_code == 200
    assert client.get(f"{PRODUCTS}{other_draft.pk}/").status_code == 404
    assert as_user(None).get(f"{PRODUCTS}{draft.pk}/").status_code == 404


def test_product_filters(as_user):
    fruit = factories.category(name="Fruit")
    bread = factories.category(name="Bread")
    owner = factories.user()
    shop = factories.merchant(owner=owner)
    apple = factories.product(merchant=shop, category=fruit)
    loaf = factories.product(merchant=shop, category=bread)
    draft = factories.product(merchant=shop, category=bread, is_published=False)
    elsewhere = factories.product(merchant=factories.merchant(), category=fruit)
    client = as_user(owner)

    def ids(**params):
        return [p["id"] for p in client.get(PRODUCTS, params).json()["results"]]

    assert ids(merchant_id=shop.pk) == [apple.pk, loaf.pk, draft.pk]
    assert ids(category=fruit.slug) == [apple.pk, elsewhere.pk]
    assert ids(category=str(bread.pk)) == [loaf.pk, draft.pk]
    assert ids(merchant_id=shop.pk, is_published="false") == [draft.pk]
    assert ids(merchant_id=shop.pk, is_published="true") == [apple.pk, loaf.pk]


@pytest.mark.parametrize("params", [{"merchant_id": "x"}, {"is_published": "maybe"}])
def test_malformed_filters_are_400(as_user, params):
    response = as_user(None).get(PRODUCTS, params)
    assert response.status_code == 400
    assert set(response.json()) == set(params)


def test_product_list_query_count_does_not_grow(as_user, django_assert_num_queries):
    shop = factories.merchant()
    tag = factories.category()
    for _ in range(15):
        factories.product(merchant=shop, category=tag)
    client = as_user(None)
    for size in (3, 15):
        # the page of stored listings, with their count
        with django_assert_num_queries(1):
            response = client.get(PRODUCTS, {"page_size": size})
        assert response.status_code == 200
        assert len(response.json()["results"]) == size


def test_owner_creates_a_product_for_own_merchant_without_naming_it(as_user):
    owner = factories.user()
    shop = factories.merchant(owner=owner)
    tag = factories.category()
    response = as_user(owner).post(
        PRODUCTS, {"category_id": tag.pk, "title": "Milk 1l", "price": "1.19"}
    )
    assert response.status_code == 201
    assert response.json()["merchant_id"] == shop.pk
    assert response.json()["is_published"] is True


def test_operator_must_name_the_merchant(as_user):
    tag = factories.category()
    response = as_user(factories.user(is_staff=True)).post(
        PRODUCTS, {"category_id": tag.pk, "title": "Milk", "price": "1.00"}
    )
    assert response.status_code == 400
    assert "merchant_id" in response.json()
    assert not Product.objects.exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("price", "-0.01"),
        ("price", "abc"),
        ("price", "1.999"),
        ("category_id", 999999),
        ("title", ""),
    ],
)
def test_invalid_product_input_is_a_field_error(as_user, field, value):
    owner = factories.user()
    factories.merchant(owner=owner)
    body = {"category_id": factories.category().pk, "title": "Milk", "price": "1.00"}
    body[field] = value
    response = as_user(owner).post(PRODUCTS, body)
    assert response.status_code == 400
    assert field in response.json()
    assert not Product.objects.exists()


def test_product_update_cannot_move_it_to_another_merchant(as_user):
    owner = factories.user()
    shop = factories.merchant(owner=owner)
    other = factories.merchant()
    item = factories.product(merchant=shop)
    response = as_user(owner).patch(f"{PRODUCTS}{item.pk}/", {"merchant_id": other.pk})
    assert response.status_code == 200
    item.refresh_from_db()
    assert item.merchant_id == shop.pk


def distinct_words(letters: str, *, length: int) -> str:
    """`length` characters of distinct words of `letters`: a text whose search vector is
    as large as a text of its length can make one."""
    words = itertools.product(letters, repeat=3)
    text = " ".join("".join(word) for word in words)[:length]
    # Not a space last, which a text field trims.
    return text[:-1] + letters[0] if text.endswith(" ") else text


def test_a_description_past_the_longest_is_a_field_error_not_a_database_outage(as_user):
    owner = factories.user()
    shop = factories.merchant(owner=owner)
    item = factories.product(merchant=shop)
    client = as_user(owner)
    body = {"category_id": item.category_id, "title": "Atlas", "price": "1.00"}
    # Words enough to pass PostgreSQL's 1 MB for the search vector the trigger writes.
    words = " ".join("".join(word) for word in itertools.product(string.ascii_lowercase, repeat=4))
    for description in (words[:1_200_000], "a" * (PRODUCT_DESCRIPTION_MAX_LENGTH + 1)):
        created = client.post(PRODUCTS, {**body, "description": description}, format="json")
        assert (created.status_code, list(created.json())) == (400, ["description"])
        changed = client.patch(f"{PRODUCTS}{item.pk}/", {"description": description}, format="json")
        assert (changed.status_code, list(changed.json())) == (400, ["description"])
    assert list(Product.objects.values_list("pk", "description")) == [(item.pk, "")]
    # The longest, of the words that make the largest vectors, is stored.
    bold_letters = "".join(chr(0x1D400 + n) for n in range(52))  # 4 bytes each in UTF-8
    longest = distinct_words(bold_letters, length=PRODUCT_DESCRIPTION_MAX_LENGTH)
    created = client.post(PRODUCTS, {**body, "description": longest}, format="json")
    assert created.status_code == 201
    assert Product.objects.get(pk=created.json()["id"]).description == longest


def test_database_refuses_a_negative_price():
    from django.db import IntegrityError, transaction

    item = factories.product(merchant=factories.merchant())
    with pytest.raises(IntegrityError), transaction.atomic():
        Product.objects.filter(pk=item.pk).update(price=-1)


def test_categories_are_public_and_slugs_unique(as_user):
    factories.category(name="Dairy")
    operator = as_user(factories.user(is_staff=True))
    listing = as_user(None).get(CATEGORIES).json()
    assert listing["count"] == 1
    assert set(listing["results"][0]) == {"id", "name", "slug"}
    assert operator.post(CATEGORIES, {"name": "Eggs", "slug": "eggs"}).status_code == 201
    duplicate = operator.post(CATEGORIES, {"name": "Eggs 2", "slug": "eggs"})
    assert duplicate.status_code == 400
    assert "slug" in duplicate.json()
    assert list(ProductCategory.objects.filter(slug="eggs").values_list("name", flat=True)) == [
        "Eggs"
    ]


def test_a_slug_of_digits_alone_is_refused_as_the_category_filter_reads_digits_as_an_id(as_user):
    operator = as_user(factories.user(is_staff=True))
    tag = factories.category(name="Bakery")
    refused = operator.post(CATEGORIES, {"name": "Year", "slug": "2024"})
    assert refused.status_code == 400
    assert list(refused.json()) == ["slug"]
    assert operator.patch(f"{CATEGORIES}{tag.pk}/", {"slug": "7"}).status_code == 400
    assert list(ProductCategory.objects.values_list("name", "slug")) == [("Bakery", tag.slug)]
    # Digits among other characters name it, by the filter too.
    assert operator.patch(f"{CATEGORIES}{tag.pk}/", {"slug": "2024-bakery"}).status_code == 200
    item = factories.product(merchant=factories.merchant(), category=tag)
    listed = as_user(None).get(PRODUCTS, {"category": "2024-bakery"}).json()["results"]
    assert [product["id"] for product in listed] == [item.pk]


def test_category_in_use_cannot_be_deleted(as_user):
    tag = factories.category()
    shop = factories.merchant(categories=[tag])
    item = factories.product(merchant=shop, category=tag)
    response = as_user(factories.user(is_staff=True)).delete(f"{CATEGORIES}{tag.pk}/")
    assert response.status_code == 409
    assert "detail" in response.json()
    # Nothing of the deletion happened: neither the category nor what refers to it.
    assert ProductCategory.objects.filter(pk=tag.pk).exists()
    assert Product.objects.get(pk=item.pk).category_id == tag.pk
    assert list(shop.categories.values_list("pk", flat=True)) == [tag.pk]


def test_categories_answer_what_their_serializer_says(as_user):
    made = [factories.category(name=name) for name in ('Caf\u00e9 "B" \u2028', "Apples")]
    client = as_user(None)
    in_order = sorted(made, key=lambda category: (category.name, category.pk))
    listing = client.get(CATEGORIES, {"page_size": 1, "page": 2})
    assert listing.json()["results"] == [dict(CategorySerializer(in_order[1]).data)]
    for category in made:
        detail = client.get(f"{CATEGORIES}{category.pk}/")
        assert detail.content == JSONRenderer().render(CategorySerializer(category).data)
    assert client.get(f"{CATEGORIES}{made[-1].pk + 1}/").status_code == 404
