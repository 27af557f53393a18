"""Pages of a queryset compiled once (`geomarket.sql.CompiledPage`): each call's values
fill the stand-ins' places, and every page and count is that of the queryset built for
that call."""

import pytest
from django.db import connection

from catalog.models import Product
from geomarket.sql import CompiledPage
from tests import factories

pytestmark = pytest.mark.django_db

_STAND_IN = -70_001


def _of(merchant_id: int):
    return Product.objects.filter(merchant_id=merchant_id).order_by("id").values_list("id", "title")


@pytest.fixture
def shops():
    made = [factories.merchant() for _ in range(2)]
    for shop, count in zip(made, (5, 3), strict=True):
        for _ in range(count):
            factories.product(merchant=shop)
    return made


def test_each_call_reads_its_own_merchants_page_and_count(shops, django_assert_num_queries):
    pages = CompiledPage(_of(_STAND_IN), slots={"merchant_id": _STAND_IN})
    for shop in shops:
        for offset in (0, 2):
            with django_assert_num_queries(1):
                page = pages.read(offset=offset, limit=2, merchant_id=shop.pk)
            fresh = _of(shop.pk)
            assert list(page.rows) == list(fresh[offset : offset + 2])
            assert page.count == fresh.count()
            assert page.rows


def test_past_the_end_the_count_is_read_alone(shops, django_assert_num_queries):
    pages = CompiledPage(_of(_STAND_IN), slots={"merchant_id": _STAND_IN})
    with django_assert_num_queries(2):
        page = pages.read(offset=10, limit=2, merchant_id=shops[0].pk)
    assert (list(page.rows), page.count) == ([], 5)
    with django_assert_num_queries(1):
        empty = pages.read(offset=0, limit=2, merchant_id=0)
    assert (list(empty.rows), empty.count) == ([], 0)


def test_a_page_is_a_prepared_statement(shops):
    """Planned once per connection: PostgreSQL took several times a page's run to plan it."""
    pages = CompiledPage(_of(_STAND_IN), slots={"merchant_id": _STAND_IN})
    for shop in shops:
        pages.read(offset=0, limit=2, merchant_id=shop.pk)
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements WHERE NOT from_sql")
        prepared = [text for (text,) in cursor.fetchall() if "catalog_product" in text]
    assert len(prepared) == 1, prepared
