"""Suggest reads catalog_producttitle, the distinct published titles kept by triggers
(migration 0006_suggest_titles): the table follows every product write, and the answer
stays the one of the ORM query it replaced, whatever the catalog."""

import random
from collections import Counter

import pytest

from catalog.models import Product, ProductTitle
from catalog.selectors import SUGGEST_LIMIT, product_title_suggestions
from merchants.models import Merchant
from tests import factories

pytestmark = pytest.mark.django_db


def reference_suggestions(q: str) -> list[str]:
    """The ORM query suggest ran before catalog_producttitle: the contract's semantics."""
    visible = Product.objects.filter(is_published=True, merchant__is_active=True)
    titles = list(
        visible.filter(title__istartswith=q)
        .order_by("title")
        .values_list("title", flat=True)
        .distinct()[:SUGGEST_LIMIT]
    )
    if len(titles) < SUGGEST_LIMIT:
        titles += list(
            visible.filter(title__icontains=q)
            .exclude(title__istartswith=q)
            .order_by("title")
            .values_list("title", flat=True)
            .distinct()[: SUGGEST_LIMIT - len(titles)]
        )
    return titles


def stored_titles() -> dict[str, int]:
    return dict(ProductTitle.objects.values_list("title", "products"))


def published_titles() -> dict[str, int]:
    return dict(Counter(Product.objects.filter(is_published=True).values_list("title", flat=True)))


def test_titles_follow_inserts_renames_publishing_and_deletes():
    shop = factories.merchant()
    tea = factories.product(merchant=shop, title="Green Tea")
    factories.product(merchant=shop, title="Green Tea")
    hidden = factories.product(merchant=shop, title="Secret Tea", is_published=False)
    assert stored_titles() == {"Green Tea": 2}

    tea.title = "Black Tea"
    tea.save()
    assert stored_titles() == {"Green Tea": 1, "Black Tea": 1}

    hidden.is_published = True
    hidden.save()
    assert stored_titles() == {"Green Tea": 1, "Black Tea": 1, "Secret Tea": 1}

    Product.objects.filter(title="Green Tea").update(is_published=False)
    assert stored_titles() == {"Black Tea": 1, "Secret Tea": 1}

    # A renamed unpublished product does not count; published again, its new title does.
    Product.objects.filter(title="Green Tea").update(title="White Tea")
    assert stored_titles() == {"Black Tea": 1, "Secret Tea": 1}
    Product.objects.filter(title="White Tea").update(is_published=True)
    assert stored_titles() == {"Black Tea": 1, "Secret Tea": 1, "White Tea": 1}

    tea.delete()
    Product.objects.filter(title="White Tea").update(title="Secret Tea")
    assert stored_titles() == {"Secret Tea": 2}
    shop.delete()
    assert stored_titles() == {}


def test_a_deactivated_merchants_titles_leave_suggest_at_once():
    open_shop, closing = factories.merchant(), factories.merchant()
    factories.product(merchant=open_shop, title="Tea Cakes")
    factories.product(merchant=closing, title="Tea Cakes")
    factories.product(merchant=closing, title="Tea Leaves")
    assert product_title_suggestions(q="tea") == ["Tea Cakes", "Tea Leaves"]

    Merchant.objects.filter(pk=closing.pk).update(is_active=False)
    assert product_title_suggestions(q="tea") == ["Tea Cakes"]
    Merchant.objects.filter(pk=open_shop.pk).update(is_active=False)
    assert product_title_suggestions(q="tea") == []
    # The titles stay stored: only the products' own state counts there.
    assert stored_titles() == {"Tea Cakes": 2, "Tea Leaves": 1}


def test_titles_of_closed_merchants_do_not_take_the_places_of_others():
    closed = factories.merchant(is_active=False)
    shop = factories.merchant()
    for n in range(SUGGEST_LIMIT):
        factories.product(merchant=closed, title=f"Tea {n:02d}")
    factories.product(merchant=shop, title="Tea 99")
    factories.product(merchant=shop, title="Iced Tea")
    assert product_title_suggestions(q="tea") == ["Tea 99", "Iced Tea"]


WORDS = ["tea", "Tea", "TEA", "green", "Organic", "bread", "Rye", "100%", "a_b", "x\\y", "ß"]
QUERIES = ["tea", "TEA", "ea ", "gre", "org", "READ", "rye", "100%", "a_b", "_b ", "x\\y", "zzz"]


def _random_title(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 3)))


@pytest.mark.parametrize("seed", range(6))
def test_suggest_answers_as_the_orm_query_on_random_catalogs(seed):
    rng = random.Random(seed)
    category = factories.category()
    merchants = [factories.merchant(is_active=rng.random() < 0.8) for _ in range(4)]
    products = [
        factories.product(
            merchant=rng.choice(merchants),
            category=category,
            title=_random_title(rng),
            is_published=rng.random() < 0.8,
        )
        for _ in range(40)
    ]

    def check():
        assert stored_titles() == published_titles()
        for q in QUERIES:
            assert product_title_suggestions(q=q) == reference_suggestions(q), q

    check()
    for _ in range(3):
        for product in rng.sample(products, 8):
            product.title = _random_title(rng) if rng.random() < 0.5 else product.title
            product.is_published = rng.random() < 0.7
            product.save()
        doomed = rng.choice(products)
        products.remove(doomed)
        doomed.delete()
        shop = rng.choice(merchants)
        Merchant.objects.filter(pk=shop.pk).update(is_active=not shop.is_active)
        shop.is_active = not shop.is_active
        check()
