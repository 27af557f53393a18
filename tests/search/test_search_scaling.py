"""Search at scale: a count exact up to a bound and estimated past it (and saying so),
pages that stay consistent with the count given, one statement per page, rows rendered
as the schema's serializer renders them, and the rank-ordered term index kept equal to
the products by its triggers."""

from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import F
from django.db.models.functions import Coalesce

from catalog import selectors
from catalog.models import Product
from catalog.serializers import ProductSearchResultSerializer, product_search_results
from catalog.services import category_update, product_delete, product_update
from geomarket.api.responses import json_bytes
from tests import factories

pytestmark = pytest.mark.django_db

SEARCH = "/api/v1/search/products/"


@pytest.fixture
def teas():
    shop = factories.merchant()
    drinks = factories.category(name="Drinks")
    return [
        factories.product(
            merchant=shop,
            category=drinks,
            title=f"Tea {n}",
            # Every third also says "tea" in its description: ranked above the rest.
            description="A fine tea." if n % 3 == 0 else "",
            price=f"{n}.00",
        )
        for n in range(1, 8)
    ]


def test_the_count_is_exact_up_to_the_bound(api_client, teas):
    body = api_client.get(SEARCH, {"q": "tea", "page_size": 2}).json()
    assert (body["count"], body["count_is_estimate"], body["total_pages"]) == (7, False, 4)


def test_past_the_bound_the_count_is_an_estimate_and_says_so(api_client, teas, monkeypatch):
    monkeypatch.setattr(selectors, "SEARCH_COUNT_BOUND", 3)
    body = api_client.get(SEARCH, {"q": "tea", "page_size": 2}).json()
    assert body["count_is_estimate"] is True
    assert body["count"] >= 4
    assert body["total_pages"] == -(-body["count"] // 2)


def _pages(api_client, q: str) -> list[dict]:
    """Every page of a search, by following the `next` links."""
    body = api_client.get(SEARCH, {"q": q, "page_size": 2}).json()
    pages = [body]
    while body["next"]:
        body = api_client.get(body["next"]).json()
        pages.append(body)
    return pages


@pytest.fixture
def analyzed(teas):
    """Statistics for the planner's estimates, as autovacuum would gather them."""
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE catalog_product")


def test_a_word_is_ranked_exactly_on_every_page_past_the_bound(
    api_client, teas, analyzed, monkeypatch
):
    monkeypatch.setattr(selectors, "SEARCH_COUNT_BOUND", 3)
    pages = _pages(api_client, "tea")
    assert {(body["count"], body["count_is_estimate"]) for body in pages} == {(7, True)}
    # The word's products are walked best first from the term index: "tea" in the title
    # and the description first, then by id, however deep the page.
    seen = [row["id"] for body in pages for row in body["results"]]
    assert seen == [teas[n].pk for n in (2, 5, 0, 1, 3, 4, 6)]


def test_other_queries_rank_the_bounded_candidates_and_page_on_past_them(
    api_client, teas, analyzed, monkeypatch
):
    monkeypatch.setattr(selectors, "SEARCH_COUNT_BOUND", 3)
    pages = _pages(api_client, "tea or lemonade")
    assert {body["count_is_estimate"] for body in pages} == {True}
    seen = [row["id"] for body in pages for row in body["results"]]
    # The first three candidates in the index's order are ranked (those saying "tea" in
    # their description first); the rest follow in that order, each once. The index's
    # order is the table's, which rows rolled back by earlier tests may make another
    # than the ids'.
    candidates = _index_matches("tea or lemonade")
    assert sorted(pk for pk, _ in candidates) == [tea.pk for tea in teas]
    ranked = sorted(candidates[:3], key=lambda match: (-match[1], match[0]))
    assert seen == [pk for pk, _ in ranked + candidates[3:]]


def _index_matches(q: str) -> list[tuple[int, float]]:
    """The GIN index's matches of a search without filters, (id, rank) in the order the
    search reads them as its candidates."""
    unfiltered = selectors.SearchVariant("relevance", None, False, False, False, False)
    matches = selectors._search_matches_plan(unfiltered)
    _, params = selectors.products_search_statement(offset=0, limit=20, q=q)
    with connection.cursor() as cursor:
        cursor.execute(matches.call(), params)
        return cursor.fetchall()


def test_an_estimate_for_every_sort_and_without_a_query(api_client, teas, monkeypatch):
    monkeypatch.setattr(selectors, "SEARCH_COUNT_BOUND", 3)
    for params in ({"q": "tea", "sort": "price"}, {"sort": "newest"}, {"max_price": "5"}):
        body = api_client.get(SEARCH, params).json()
        assert body["count_is_estimate"] is True, params
        assert body["count"] >= 4, params


def test_one_statement_answers_the_page_and_its_count(api_client, teas, django_assert_num_queries):
    for params in ({"q": "tea"}, {"q": "tea", "sort": "price"}, {"q": "green tea"}, {}):
        with django_assert_num_queries(1):
            assert api_client.get(SEARCH, params).status_code == 200


def test_the_last_page_is_found_through_the_count(api_client, teas):
    body = api_client.get(SEARCH, {"q": "tea", "page_size": 3, "page": "last"}).json()
    assert body["page"] == 3
    assert [row["id"] for row in body["results"]] == [teas[6].pk]


def test_a_row_renders_as_the_serializer_renders_it(teas):
    """Each result is written as `json_bytes` writes the serializer's data: escapes, raw
    U+2028 and accents, money's two places, microseconds, no stock."""
    item = teas[0]
    Product.objects.filter(pk=item.pk).update(
        price=Decimal("2.5"),
        created_at="2026-01-02T03:04:05.000007Z",
        title='Tea "green" \\ caf\u00e9 \u2028 \u2029 \U0001f375',
        description="Line\none\ttab\x01\x1f\x7f </script>",
    )
    category_update(category=item.category, data={"name": 'Drinks \u2028 & "more"'})
    factories.stock(product=teas[1], quantity=0)
    factories.stock(product=teas[2], quantity=12)
    for sort in ("price", "relevance"):
        page = selectors.products_search_page(q="tea", sort=sort, offset=0, limit=10)
        annotated = (
            Product.objects.select_related("category")
            .annotate(stock=Coalesce(F("inventory__quantity"), 0))
            .in_bulk()
        )
        assert len(page.rows) == len(teas)
        for ours in product_search_results(page.rows):
            data = ProductSearchResultSerializer(annotated[ours["id"]]).data
            assert json_bytes(ours) == json_bytes(dict(data))


def test_the_schema_declares_the_estimate_flag(client):
    schema = client.get("/api/schema/?format=json").json()
    page = schema["paths"]["/api/v1/search/products/"]["get"]["responses"]["200"]
    name = page["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    properties = schema["components"]["schemas"][name]["properties"]
    assert properties["count_is_estimate"]["type"] == "boolean"


def _terms() -> set[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT lexeme, rank_key, product_id, price, merchant_id, category_id"
            " FROM catalog_productterm"
        )
        return set(cursor.fetchall())


def _terms_recomputed() -> set[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT t.* FROM catalog_product p, catalog_product_terms("
            "p.id, p.search_vector, p.price, p.merchant_id, p.category_id) t"
            " WHERE p.is_published"
        )
        return set(cursor.fetchall())


def test_the_term_index_follows_every_write(api_client, teas):
    drinks = teas[0].category
    assert _terms() == _terms_recomputed() != set()
    product_update(product=teas[0], data={"title": "Oat Drink", "price": Decimal("1.10")})
    product_update(product=teas[1], data={"is_published": False})
    product_update(product=teas[2], data={"category": factories.category(name="Herbal")})
    product_delete(product=teas[3])
    category_update(category=drinks, data={"name": "Infusions"})
    assert _terms() == _terms_recomputed()

    def titles(**params):
        body = api_client.get(SEARCH, params).json()
        return sorted(row["title"] for row in body["results"])

    assert titles(q="drink") == ["Oat Drink"]
    assert titles(q="drink", max_price="1.00") == []
    assert titles(q="tea") == ["Tea 3", "Tea 5", "Tea 6", "Tea 7"]
    assert titles(q="herbal") == ["Tea 3"]
    assert titles(q="infusions") == ["Oat Drink", "Tea 5", "Tea 6", "Tea 7"]
    # The old category name is gone: only the title's stem matches.
    assert titles(q="drinks") == ["Oat Drink"]


def test_an_inactive_merchant_s_products_are_not_found(api_client, teas):
    closed = factories.merchant(is_active=False)
    factories.product(merchant=closed, title="Tea 8")
    body = api_client.get(SEARCH, {"q": "tea"}).json()
    assert body["count"] == 7
    assert "Tea 8" not in [row["title"] for row in body["results"]]
