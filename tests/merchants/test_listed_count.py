"""The public list's count of merchants, unfiltered, is kept by triggers on the merchants
(migration 0023, `merchants.listed_count`): on every write path, and under concurrent
writers, it must stay the number of merchants the list's own rule (`_listed`) counts, and
the list must answer it."""

import time

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, transaction

from geomarket.shapes import installed_function_body
from merchants import listed_count, selectors
from merchants.models import Merchant
from merchants.selectors import LISTED_COUNT_TABLE, _listed, merchant_list_page
from tests import factories
from tests.market import api_client_as
from tests.threads import run_in_threads

MERCHANTS = "/api/v1/merchants/"


def kept() -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT merchants FROM {LISTED_COUNT_TABLE}")  # noqa: S608 - fixed
        return cursor.fetchone()[0]


def assert_kept_is_the_lists_count() -> int:
    counted = _listed().count()
    assert kept() == counted
    assert merchant_list_page(offset=0, limit=1).count == counted
    return counted


@pytest.mark.django_db
def test_every_write_path_keeps_the_count():
    start = assert_kept_is_the_lists_count()
    shop = factories.merchant()
    closed = factories.merchant(is_active=False)
    assert assert_kept_is_the_lists_count() == start + 1

    shop.is_active = False
    shop.save()
    assert assert_kept_is_the_lists_count() == start
    # A write that lists no merchant nor stops listing one leaves the count as it is.
    shop.name = "Renamed"
    shop.save()
    assert assert_kept_is_the_lists_count() == start

    Merchant.objects.filter(pk__in=[shop.pk, closed.pk]).update(is_active=True)
    assert assert_kept_is_the_lists_count() == start + 2

    copies = [
        Merchant(owner=factories.user(), name=f"Bulk {n}", address=shop.address, is_active=n % 2)
        for n in range(4)
    ]
    Merchant.objects.bulk_create(copies)
    assert assert_kept_is_the_lists_count() == start + 4

    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE merchants_merchant SET is_active = NOT is_active WHERE id = ANY(%s)",
            [[merchant.pk for merchant in copies]],
        )
    assert assert_kept_is_the_lists_count() == start + 4

    Merchant.objects.filter(name__startswith="Bulk").delete()
    assert assert_kept_is_the_lists_count() == start + 2
    shop.delete()
    assert assert_kept_is_the_lists_count() == start + 1

    with connection.cursor() as cursor:
        # The test's transaction holds the deferred foreign keys' checks, which TRUNCATE
        # refuses to leave behind.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("TRUNCATE merchants_merchant CASCADE")
    assert assert_kept_is_the_lists_count() == 0
    factories.merchant()
    assert assert_kept_is_the_lists_count() == 1


@pytest.mark.django_db
def test_the_list_answers_the_kept_count():
    for n in range(3):
        factories.merchant(name=f"Shop {n}")
    factories.merchant(is_active=False)
    body = api_client_as(None).get(MERCHANTS, {"page_size": 2}).json()
    assert body["count"] == _listed().count() == kept()
    assert [row["name"] for row in body["results"]] == ["Shop 0", "Shop 1"]
    assert api_client_as(None).get(MERCHANTS, {"page_size": 2, "page": 2}).json()["count"] == 3
    # Filtered, the list counts its merchants itself.
    assert api_client_as(None).get(MERCHANTS, {"q": "Shop 1"}).json()["count"] == 1


@pytest.mark.django_db
def test_installing_replaces_another_function_and_counts_again():
    factories.merchant()
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE OR REPLACE FUNCTION {listed_count.FUNCTION}() RETURNS trigger"
            " LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END; $$"
        )
        cursor.execute(f"UPDATE {LISTED_COUNT_TABLE} SET merchants = 999")  # noqa: S608
    assert listed_count.install() is True
    with connection.cursor() as cursor:
        assert installed_function_body(cursor, listed_count.FUNCTION) == listed_count._body()
    assert_kept_is_the_lists_count()
    assert listed_count.install() is False
    factories.merchant()
    assert_kept_is_the_lists_count()


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_lose_no_change():
    """Writers that list and unlist merchants at once, each holding its transaction open
    a while after its write: they queue on the count's row, and the count is the list's
    after all of them."""
    shops = [factories.merchant() for _ in range(2)]
    start = assert_kept_is_the_lists_count()

    def held(write):
        def run():
            with transaction.atomic():
                write()
                time.sleep(HOLD_SECONDS)

        return run

    def unlist(shop):
        return held(lambda: Merchant.objects.filter(pk=shop.pk).update(is_active=False))

    run_in_threads(
        held(factories.merchant), held(factories.merchant), unlist(shops[0]), unlist(shops[1])
    )
    assert assert_kept_is_the_lists_count() == start


HOLD_SECONDS = 0.2


def test_a_list_rule_reading_another_table_is_refused(monkeypatch):
    # The trigger sees only the merchants a statement wrote: a rule joining their
    # categories would miss every category write, so it must not be generated at all.
    def by_category(**filters):
        return Merchant.objects.filter(is_active=True, categories__slug="bakery")

    monkeypatch.setattr(selectors, "_listed", by_category)
    with pytest.raises(ImproperlyConfigured, match="merchant_categories"):
        selectors.listed_ids_sql()
    monkeypatch.undo()
    assert "merchants_merchant" in selectors.listed_ids_sql()
