"""Kept plans (geomarket/kept_plans.py): functions generated from statements, installed
after `migrate`, keeping one generic plan per session; and catalog's searches and
suggestions through them, answering what their statements answer."""

import re
from decimal import Decimal

import pytest
from django.db import connection, transaction

from catalog import selectors
from catalog.selectors import (
    KEPT_PLANS,
    SEARCH_PLANS,
    SEARCH_SORTS,
    SUGGEST_CONTAINING,
    SUGGEST_PLAN,
    SearchVariant,
    products_search_statement,
    search_plan_kept,
    suggest_params,
)
from geomarket import kept_plans
from geomarket.kept_plans import Computed, KeptPlan
from geomarket.shapes import installed_function_body
from tests import factories

pytestmark = pytest.mark.django_db

DOUBLED = KeptPlan(
    name="kept_plans_test_doubled",
    statement=(
        "SELECT n * 2 AS doubled, %(label)s || '%%' AS label"
        " FROM generate_series(1, %(count)s) n WHERE n <> %(skip)s"
    ),
    types={"count": "integer", "label": "text", "skip": "integer"},
    returns=(("doubled", "integer"), ("label", "text")),
)

WORDS = KeptPlan(
    name="kept_plans_test_words",
    statement=(
        "SELECT numnode(websearch_to_tsquery('english', %(q)s)),"
        " (tsvector_to_array(websearch_to_tsquery('english', %(q)s)::text::tsvector))[1]"
    ),
    types={"q": "text"},
    returns=(("nodes", "integer"), ("word", "text")),
    computed=(
        Computed("websearch_to_tsquery('english', %(q)s)", "q_query", "tsquery"),
        Computed(
            "(tsvector_to_array(websearch_to_tsquery('english', %(q)s)::text::tsvector))[1]",
            "q_word",
            "text",
        ),
    ),
)


def _rows(sql: str, params=None) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _run(sql: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql)


def _installed(plan: KeptPlan) -> str | None:
    with connection.cursor() as cursor:
        return installed_function_body(cursor, plan.name)


def _functions_named(name: str) -> list[str]:
    return [
        row[0]
        for row in _rows("SELECT oid::regprocedure::text FROM pg_proc WHERE proname = %s", [name])
    ]


# --- the mechanism --------------------------------------------------------------------


def test_a_function_answers_as_its_statement():
    kept_plans.sync([DOUBLED])
    params = {"count": 4, "label": "x", "skip": 2}
    assert _rows(DOUBLED.call(), params) == _rows(DOUBLED.statement, params)


def test_arguments_are_the_statements_parameters_in_order_of_first_use():
    assert DOUBLED.arguments == ["label", "count", "skip"]


def test_a_parameter_without_a_type_is_refused():
    plan = KeptPlan(name="kept_plans_test_untyped", statement="SELECT %(n)s", types={}, returns=())
    with pytest.raises(ValueError, match="no type"):
        plan.body  # noqa: B018 - building it is what is tested


def test_computed_values_are_read_from_their_variables():
    body = WORDS.body
    statement = body.split("RETURN QUERY", 1)[1]
    assert "websearch_to_tsquery" not in statement
    assert "q_word" in statement
    assert "numnode(q_query)" in statement
    # The later value is computed from the earlier one.
    assert "q_word text := (tsvector_to_array(q_query::text::tsvector))[1];" in body
    kept_plans.sync([WORDS])
    assert _rows(WORDS.call(), {"q": "Milk"}) == [(1, "milk")]
    for q in ("fresh milk", "the", '"oat milk" -chocolate'):
        assert _rows(WORDS.call(), {"q": q}) == _rows(WORDS.statement, {"q": q})


def test_the_generic_plan_is_kept_on_the_function():
    kept_plans.sync([DOUBLED])
    (config,) = _rows(
        "SELECT proconfig FROM pg_proc WHERE proname = %s AND prolang ="
        " (SELECT oid FROM pg_language WHERE lanname = 'plpgsql')",
        [DOUBLED.name],
    )
    assert config == (["plan_cache_mode=force_generic_plan"],)


def test_sync_installs_once_and_then_leaves_it():
    assert kept_plans.sync([DOUBLED]) in ([DOUBLED.name], [])
    assert _installed(DOUBLED) == DOUBLED.body
    assert kept_plans.sync([DOUBLED]) == []


def test_sync_replaces_a_function_whose_body_differs():
    kept_plans.sync([DOUBLED])
    _run(DOUBLED.create.replace("CREATE", "CREATE OR REPLACE", 1).replace("n * 2", "n * 3"))
    assert _installed(DOUBLED) != DOUBLED.body
    assert kept_plans.sync([DOUBLED]) == [DOUBLED.name]
    assert _installed(DOUBLED) == DOUBLED.body


def test_sync_drops_a_function_of_another_signature():
    _run(f"CREATE FUNCTION {DOUBLED.name}(a integer) RETURNS integer LANGUAGE sql AS 'SELECT a'")
    assert kept_plans.sync([DOUBLED]) == [DOUBLED.name]
    assert len(_functions_named(DOUBLED.name)) == 1
    assert _rows(DOUBLED.call(), {"count": 1, "label": "", "skip": 0}) == [(2, "%")]


# --- catalog's plans ------------------------------------------------------------------


@pytest.mark.parametrize("plan", KEPT_PLANS, ids=lambda plan: plan.name)
def test_every_kept_plan_is_installed_as_the_code_gives_it_after_migrate(plan):
    assert _installed(plan) == plan.body
    assert len(_functions_named(plan.name)) == 1


def test_every_combination_of_search_filters_has_its_functions():
    names = {plan.name for plan in SEARCH_PLANS.values()}
    assert len(names) == len(SEARCH_PLANS) == 48
    matches = {selectors._search_matches_plan(variant).name for variant in SEARCH_PLANS}
    assert len(matches) == 48
    assert {plan.name for plan in KEPT_PLANS} >= names | matches


def test_relevance_calls_its_kept_plan_and_sorts_do_not():
    sql, _ = products_search_statement(offset=0, limit=20, q="milk", max_price=Decimal(5))
    assert sql.startswith("SELECT * FROM catalog_search_ranked_h(")
    assert search_plan_kept(sql)
    for sort in set(SEARCH_SORTS) - {"relevance"}:
        sql, _ = products_search_statement(offset=0, limit=20, q="milk", sort=sort)
        assert not search_plan_kept(sql)
    sql, _ = products_search_statement(offset=0, limit=20)
    assert not search_plan_kept(sql)


@pytest.fixture
def shelves():
    dairy, bakery = factories.category(name="Dairy"), factories.category(name="Bakery")
    shop, other = factories.merchant(), factories.merchant()
    closed = factories.merchant(is_active=False)
    rows = [
        (shop, dairy, "Whole Milk 1L", "Fresh milk.", "1.10"),
        (shop, dairy, "Oat Milk", "Plant based.", "2.40"),
        (other, dairy, "Milk Chocolate", "Sweet.", "3.10"),
        (other, bakery, "Butter Croissant", "Made with milk.", "1.90"),
        (shop, bakery, "Sourdough Bread", "Slow fermented.", "4.50"),
        (closed, dairy, "Goat Milk", "Closed shop's milk.", "2.00"),
    ]
    products = [
        factories.product(merchant=m, category=c, title=t, description=d, price=p)
        for m, c, t, d, p in rows
    ]
    for index, product in enumerate(products):
        factories.stock(product=product, quantity=index % 2)
    return {"shop": shop, "dairy": dairy, "bakery": bakery}


SEARCHES = [
    {"q": "milk"},
    {"q": "milk", "max_price": Decimal("2.50")},
    {"q": "milk", "min_price": Decimal("2.00"), "in_stock": True},
    {"q": "milk bread"},
    {"q": "bread OR croissant"},
    {"q": "the"},
    {"q": "milk", "category": "slug"},
    {"q": "milk", "category": "id", "merchant_id": "shop"},
]


@pytest.mark.parametrize("search", SEARCHES, ids=str)
@pytest.mark.parametrize("offset", [0, 1, 3])
def test_a_kept_search_answers_the_rows_of_its_statement(shelves, search, offset, monkeypatch):
    monkeypatch.setattr(selectors, "SEARCH_COUNT_BOUND", 2)
    filters = dict(search)
    if filters.get("category") == "slug":
        filters["category"] = shelves["dairy"].slug
    elif filters.get("category") == "id":
        filters["category"] = shelves["dairy"].pk
    if "merchant_id" in filters:
        filters["merchant_id"] = shelves["shop"].pk
    sql, params = products_search_statement(offset=offset, limit=2, **filters)
    by_category = None
    if "category" in filters:
        by_category = "id" if isinstance(filters["category"], int) else "slug"
    statement = selectors._search_variant_sql(
        SearchVariant(
            sort="relevance",
            by_category=by_category,
            min_price="min_price" in filters,
            max_price="max_price" in filters,
            merchant_id="merchant_id" in filters,
            in_stock=bool(filters.get("in_stock")),
        )
    )
    kept = _rows(sql, params)
    assert kept == _rows(statement, params)
    assert search_plan_kept(sql)


@pytest.fixture
def big_shelves(shelves):
    """Thousands of products and titles, so that the planner weighs the indexes as it
    does in a city: over a few rows it reads whole tables."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO catalog_product (merchant_id, category_id, title, description, price,"
            " is_published, created_at, updated_at)"
            " SELECT %s, %s, 'Item ' || n || ' ' || (ARRAY['Milk', 'Tea', 'Rye'])[n %% 3 + 1],"
            " 'Plain', 1 + n %% 40, true, now(), now() FROM generate_series(1, 4000) n",
            [shelves["shop"].pk, shelves["dairy"].pk],
        )
        # The merchants' statistics too: without them the planner guesses a table of some
        # size, and with them a plan free to walk any index over a few thousand products
        # walked the merchants' index or the published products' instead of the GIN's.
        cursor.execute(
            "ANALYZE merchants_merchant, catalog_product, catalog_productterm, catalog_producttitle"
        )
    return shelves


ONE_FILTER = SearchVariant("relevance", None, False, True, False, False)


def test_the_kept_search_plan_walks_the_word_index(big_shelves):
    _, params = products_search_statement(offset=0, limit=20, q="milk", max_price=Decimal(5))
    with transaction.atomic(), connection.cursor() as cursor:
        text = SEARCH_PLANS[ONE_FILTER].explain(cursor, params)
    assert "Index Only Scan using catalog_productterm_pkey" in text, text
    # The GIN index's matches are planned with each search's query.
    assert "Function Scan on catalog_search_matches_h" in text, text


@pytest.mark.parametrize("q", ["croissant", "milk", "sourdough bread", "croissant OR sourdough"])
def test_the_gin_matches_are_read_from_the_index_whatever_the_query(big_shelves, q):
    # "milk" matches a third of the catalog, where a walk of the table that stops at the
    # limit looks cheaper to a plan made for it; the kept plan is made for no query.
    matches = selectors._search_matches_plan(ONE_FILTER)
    _, params = products_search_statement(offset=0, limit=20, q=q, max_price=Decimal(5))
    with transaction.atomic(), connection.cursor() as cursor:
        text = matches.explain(cursor, params)
    assert "Bitmap Index Scan on product_search_gin" in text, text
    assert "Seq Scan on catalog_product" not in text, text
    assert _rows(matches.call(), params) == _rows(matches.statement, params)


def test_gin_matches_keep_their_plan_as_the_rest_does():
    matches = selectors._search_matches_plan(ONE_FILTER)
    assert "RETURN QUERY EXECUTE" not in matches.body
    assert "force_generic_plan" in matches.create
    assert "enable_seqscan = off" in matches.create
    assert "RETURN QUERY EXECUTE" not in SEARCH_PLANS[ONE_FILTER].body


def test_the_kept_suggest_plan_reads_a_range_of_the_prefix_index(big_shelves):
    with transaction.atomic(), connection.cursor() as cursor:
        text = SUGGEST_PLAN.explain(cursor, suggest_params("mil"))
    assert re.search(
        r"Index Scan (?:on|using) product_title_name_prefix[^\n]*\n"
        r"\s+Index Cond: \(\(title_upper ~>=~ \$\d+\) AND \(title_upper ~<~ \$\d+\)\)",
        text,
    ), text
    # The titles containing the query are planned with it.
    assert "Function Scan on catalog_suggest_containing" in text, text
    with transaction.atomic(), connection.cursor() as cursor:
        text = SUGGEST_CONTAINING.explain(cursor, suggest_params("roissan"))
    assert "title_upper ~~ '%ROISSAN%'::text" in text, text


SUGGESTED = ["Mil", "milk", "MILK", "oat", "ilk", "10%", "a_b", "x\\y", "zzz"]


@pytest.mark.parametrize("q", SUGGESTED)
def test_kept_suggestions_are_those_of_the_statement(shelves, q):
    params = suggest_params(q)
    assert _rows(SUGGEST_PLAN.call(), params) == _rows(SUGGEST_PLAN.statement, params)


def test_suggestions_leave_out_closed_shops_titles(shelves):
    assert selectors.product_title_suggestions(q="milk") == [
        "Milk Chocolate",
        "Oat Milk",
        "Whole Milk 1L",
    ]


EDGE_TITLES = ["Zed", "Zed\ud7ff x", "Zed\ue000 y", "Zed\U0010ffff tail", "Zee"]


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("zed", {"Zed", "Zed\ud7ff x", "Zed\ue000 y", "Zed\U0010ffff tail"}),
        # The successor of U+D7FF is past the surrogates; U+10FFFF has none.
        ("zed\ud7ff", {"Zed\ud7ff x"}),
        ("ZED\ue000", {"Zed\ue000 y"}),
        ("zed\U0010ffff", {"Zed\U0010ffff tail"}),
        ("ze", {"Zed", "Zed\ud7ff x", "Zed\ue000 y", "Zed\U0010ffff tail", "Zee"}),
    ],
)
def test_the_prefix_range_holds_every_title_starting_with_the_query(q, expected):
    shop = factories.merchant()
    for title in EDGE_TITLES:
        factories.product(merchant=shop, title=title)
    assert set(selectors.product_title_suggestions(q=q)) == expected
    params = suggest_params(q)
    assert _rows(SUGGEST_PLAN.call(), params) == _rows(SUGGEST_PLAN.statement, params)
