"""Reports compiled once per shape send exactly what the ORM compiles for each call."""

import random
from datetime import date, timedelta
from typing import NamedTuple

import pytest
from django.db import connection
from rest_framework.renderers import JSONRenderer

from analytics import selectors
from analytics.models import MerchantDay, MerchantTotal, PlatformDay, ProductDay
from analytics.selectors import INTERVALS, DateRange
from catalog.models import Product
from geomarket.sql import CompiledQuery, fetch_value, literal_sql
from merchants.models import Merchant
from orders.models import Order
from tests import factories

pytestmark = pytest.mark.django_db


def fresh(queryset) -> str:
    """The queryset's SQL with every parameter written in."""
    return literal_sql(*queryset.query.get_compiler(using=queryset.db).as_sql())


class Call(NamedTuple):
    range_: DateRange
    merchant_id: int | None
    top: int
    interval: str


def calls(seed: int, count: int = 25):
    rng = random.Random(seed)
    for _ in range(count):
        date_from = date(2020, 1, 1) + timedelta(days=rng.randint(0, 2500))
        range_ = DateRange(date_from, date_from + timedelta(days=rng.randint(0, 400)))
        merchant_id = rng.choice([None, rng.randint(1, 2**31 - 1)])
        yield Call(range_, merchant_id, rng.randint(1, 100), rng.choice(INTERVALS))


REPORTS = {
    "top-products": (
        lambda c: selectors._top_products_queryset(
            range_=c.range_, merchant_id=c.merchant_id, top=c.top
        ),
        lambda c: selectors.top_products_statement(
            range_=c.range_, merchant_id=c.merchant_id, top=c.top
        ),
    ),
    "revenue": (
        lambda c: selectors._revenue_queryset(
            range_=c.range_, interval=c.interval, merchant_id=c.merchant_id
        ),
        lambda c: selectors.revenue_statement(
            range_=c.range_, interval=c.interval, merchant_id=c.merchant_id
        ),
    ),
    "merchants": (
        lambda c: selectors._merchants_queryset(range_=c.range_),
        lambda c: selectors.merchants_statement(range_=c.range_),
    ),
}


@pytest.mark.parametrize("report", REPORTS)
def test_a_compiled_report_is_the_orm_query_with_the_calls_values(report):
    queryset_for, statement_for = REPORTS[report]
    for call in calls(len(report)):
        statement = statement_for(call)
        assert literal_sql(statement.sql, statement.params) == fresh(queryset_for(call))


def test_revenue_windows_run_over_generated_periods():
    sql = selectors.revenue_statement(range_=DateRange(date(2026, 1, 1), date(2026, 2, 1))).sql
    assert "generate_series(" in sql
    assert "SUM(COALESCE(" in sql
    assert "OVER (ORDER BY" in sql
    assert "ROWS BETWEEN 6 PRECEDING AND CURRENT ROW" in sql


def test_a_stand_in_the_query_never_uses_is_refused():
    with pytest.raises(ValueError, match="merchant_id"):
        CompiledQuery(Order.objects.filter(pk=7), slots={"merchant_id": 2_000_000_011})


def guarded_statements(history):
    march = DateRange(date(2026, 3, 1), date(2026, 3, 31))
    shop = history["shops"][0].pk
    return [
        lambda key: selectors.revenue_statement(range_=march, operator_key=key),
        lambda key: selectors.revenue_statement(
            range_=march, interval="week", merchant_id=shop, operator_key=key
        ),
        lambda key: selectors.top_products_statement(
            range_=march, merchant_id=shop, operator_key=key
        ),
    ]


def test_a_guarded_report_has_rows_only_for_an_active_operators_token(history, operator_user):
    customer = factories.user()
    retired = factories.user(is_staff=True)
    retired.is_active = False
    retired.save(update_fields=["is_active"])
    for statement_of in guarded_statements(history):
        unguarded = selectors.fetch_rows(statement_of(None))
        assert unguarded
        assert selectors.fetch_rows(statement_of(operator_user.auth_token.key)) == unguarded
        for key in (customer.auth_token.key, retired.auth_token.key, "0" * 40):
            assert selectors.fetch_rows(statement_of(key)) == []


def plan_nodes(statement) -> list[dict]:
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + statement.sql, statement.params)
        nodes = [cursor.fetchone()[0][0]["Plan"]]
    for node in nodes:
        nodes.extend(node.get("Plans", []))
    return nodes


ROLLUP_TABLES = {model._meta.db_table for model in (MerchantDay, PlatformDay, ProductDay)}


def test_a_guarded_report_reads_no_rollups_for_anyone_else(history):
    customer = factories.user()
    for statement_of in guarded_statements(history):
        reads = [
            node["Actual Loops"]
            for node in plan_nodes(statement_of(customer.auth_token.key))
            if node.get("Relation Name") in ROLLUP_TABLES
        ]
        assert reads
        assert reads == [0] * len(reads)


def test_the_merchants_report_reads_two_running_totals_a_merchant(history):
    march = DateRange(date(2026, 3, 5), date(2026, 3, 28))
    days = MerchantDay.objects.filter(day__gte=march.date_from, day__lte=march.date_to)
    assert days.count() > 4 * Merchant.objects.count()
    reads = [
        node
        for node in plan_nodes(selectors.merchants_statement(range_=march))
        if node.get("Relation Name") == MerchantDay._meta.db_table
    ]
    # One probe to the range's end and one to before its start, for each merchant.
    assert [node["Actual Loops"] for node in reads] == [Merchant.objects.count()] * 2
    assert all(node["Node Type"] in ("Index Only Scan", "Index Scan") for node in reads)
    assert sum(node["Actual Rows"] * node["Actual Loops"] for node in reads) <= 2 * len(
        history["shops"]
    )


def test_a_range_ending_after_every_merchants_last_day_probes_only_before_its_start(history):
    last_day = MerchantDay.objects.latest("day").day
    reads = [
        node
        for node in plan_nodes(
            selectors.merchants_statement(range_=DateRange(date(2026, 3, 5), last_day))
        )
        if node.get("Relation Name") == MerchantDay._meta.db_table
    ]
    # The totals to the end are each merchant's latest, joined; its days are not probed.
    assert sorted(node["Actual Loops"] for node in reads) == [0, MerchantTotal.objects.count()]


def test_revenue_rendered_by_postgresql_is_what_drf_renders(history):
    renderer = JSONRenderer()
    shop = history["shops"][3].pk
    for date_from, date_to in [
        (date(2026, 3, 1), date(2026, 3, 31)),
        (date(2026, 3, 10), date(2026, 3, 11)),
        (date(2026, 1, 30), date(2026, 4, 2)),
    ]:
        for interval in INTERVALS:
            for merchant_id in (None, shop):
                arguments = {
                    "range_": DateRange(date_from, date_to),
                    "interval": interval,
                    "merchant_id": merchant_id,
                }
                statement = selectors.revenue_json_statement(**arguments)
                rendered = fetch_value(statement.sql, statement.params).encode()
                assert rendered == renderer.render(selectors.revenue_report(**arguments))


def test_top_products_rendered_by_postgresql_is_what_drf_renders(history):
    shop = history["shops"][0]
    sold = next(item.product_id for item in history["items"] if item.order.merchant_id == shop.pk)
    Merchant.objects.filter(pk=shop.pk).update(
        name='Caf\u00e9 "Q" \\ \u2028\u2029 \x01\x1f\t\x7f \U0001f600 </script> \u00a0'
    )
    Product.objects.filter(pk=sold).update(title="Line\nbreak \r\b\f \u2029 'x' / \u0085")
    renderer = JSONRenderer()
    march = DateRange(date(2026, 3, 1), date(2026, 3, 31))
    for merchant_id in (None, shop.pk):
        for top in (1, 5, 100):
            arguments = {"range_": march, "merchant_id": merchant_id, "top": top}
            statement = selectors.top_products_json_statement(**arguments)
            rendered = fetch_value(statement.sql, statement.params).encode()
            assert rendered == renderer.render(selectors.top_products(**arguments))
    assert b"\\u2028" in rendered
    assert b"\\u001f" in rendered


def test_a_json_answer_sorts_its_rows_once_as_it_aggregates_them(history):
    march = DateRange(date(2026, 3, 1), date(2026, 3, 31))
    if connection.pg_version >= 160000:
        # PostgreSQL 16 and later sort an ordered aggregate's input in a Sort node of its own
        # (presorted aggregates), or take rows already in that order as they come: one sort
        # either way. Without that, the aggregate sorts as 15's does, and a Sort under it is
        # the rows' own.
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_presorted_aggregate = off")
    for statement in (
        selectors.top_products_json_statement(range_=march),
        selectors.revenue_json_statement(range_=march),
        selectors.merchants_json_statement(range_=march),
    ):
        root = plan_nodes(statement)[0]
        assert root["Node Type"] == "Aggregate"
        # string_agg(... ORDER BY ...) sorts its input itself, whatever order it comes in.
        assert [node["Node Type"] for node in root["Plans"]] not in (["Sort"], ["Incremental Sort"])
