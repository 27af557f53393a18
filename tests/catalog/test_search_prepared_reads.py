"""Suggest and Django's relevance search call their kept plans as prepared statements:
the function keeps the statement's plan, the connection keeps the call's."""

from decimal import Decimal

import pytest
from django.db import connection

from catalog.selectors import (
    SUGGEST_PLAN,
    product_title_suggestions,
    products_search_page,
    products_search_statement,
    search_plan_kept,
)
from tests import factories

pytestmark = pytest.mark.django_db


def _prepared() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements WHERE NOT from_sql")
        return [text for (text,) in cursor.fetchall()]


def test_suggest_calls_its_kept_plan_prepared():
    shop = factories.merchant()
    factories.product(merchant=shop, title="Tea Cakes")
    factories.product(merchant=shop, title="Iced Tea")
    answers = [product_title_suggestions(q="tea") for _ in range(3)]
    assert answers == [["Tea Cakes", "Iced Tea"]] * 3
    assert [text for text in _prepared() if SUGGEST_PLAN.name in text], _prepared()


def test_a_relevance_search_calls_its_kept_plan_prepared_and_a_sort_does_not():
    shop = factories.merchant()
    for n in range(3):
        factories.product(merchant=shop, title=f"Milk {n}", price=f"{2 + n}.00")
    filters = {"q": "milk", "max_price": Decimal(3)}
    sql, _ = products_search_statement(offset=0, limit=20, **filters)
    assert search_plan_kept(sql)
    pages = [products_search_page(offset=0, limit=20, **filters) for _ in range(3)]
    assert {page.count for page in pages} == {2}
    assert pages[0].rows == pages[1].rows == pages[2].rows
    ranked = [text for text in _prepared() if "catalog_search_ranked_h(" in text]
    assert ranked, _prepared()

    # A sort is planned with each search's own values: never prepared.
    for _ in range(3):
        products_search_page(offset=0, limit=20, sort="price", **filters)
    assert not [text for text in _prepared() if "ORDER BY p.price" in text], _prepared()
