import functools
import itertools
from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from django.db import connection
from django.db.models import Q, QuerySet
from django.db.models.expressions import RawSQL

from catalog.models import Product, ProductCategory
from catalog.shapes import (
    CATEGORY,
    NEARBY_MERCHANT,
    PRODUCT,
    PRODUCT_JSON_COLUMN,
    PRODUCT_NEARBY,
)
from geomarket.accounts.roles import merchant_scope
from geomarket.api.pagination import CountedPage
from geomarket.db.replicas import replica_reads
from geomarket.kept_plans import Computed, KeptPlan
from geomarket.shapes import json_array_sql
from geomarket.sql import (
    CompiledPage,
    CompiledQuery,
    PreparedStatement,
    fetch_all,
    fetch_value,
    point_ewkt,
)
from merchants.selectors import MERCHANT_LOCATIONS_SQL, merchants_walk_sql, open_instant


def category_list() -> QuerySet[ProductCategory]:
    return ProductCategory.objects.order_by("name", "id")


# What the compiled reads below are built with in place of each call's values: no id is
# negative, and no slug holds a space.
_STAND_INS = {
    "category_id": -1_000_001,
    "category_slug": "compiled stand-in",
    "merchant_id": -1_000_002,
    "own_merchant_id": -1_000_003,
    "product_id": -1_000_004,
}


@functools.cache
def _category_page() -> CompiledPage:
    return CompiledPage(category_list().values_list(*CATEGORY.columns), slots={})


@replica_reads
def category_page(*, offset: int, limit: int) -> CountedPage:
    """A page of `category_list()` as rows of `CATEGORY`'s columns, and the count of all
    categories, by one statement compiled once."""
    return _category_page().read(offset=offset, limit=limit)


@functools.cache
def _category_row() -> CompiledQuery:
    category_id = _STAND_INS["category_id"]
    queryset = ProductCategory.objects.filter(pk=category_id).values_list(*CATEGORY.columns)
    return CompiledQuery(queryset, slots={"category_id": category_id})


@replica_reads
def category_row(*, category_id: int) -> tuple | None:
    """The category `category_id` as a row of `CATEGORY`'s columns, if there is one."""
    compiled = _category_row()
    rows = fetch_all(compiled.sql, compiled.params(category_id=category_id))
    return rows[0] if rows else None


def _category_filter(category: int | str) -> Q:
    """A category by id (an int) or slug (a str), as `CategoryRefField` reads it."""
    return Q(category_id=category) if isinstance(category, int) else Q(category__slug=category)


def _products_visible(*, operator: bool, own_merchant_id: int | None) -> QuerySet[Product]:
    if operator:
        return Product.objects.all()
    public = Q(is_published=True, merchant__is_active=True)
    if own_merchant_id is not None:
        public |= Q(merchant_id=own_merchant_id)
    return Product.objects.filter(public)


def products_visible_to(*, user) -> QuerySet[Product]:
    """Published products of active merchants, plus the owner's own, or all for operators."""
    operator, own_merchant_id = merchant_scope(user)
    return _products_visible(operator=operator, own_merchant_id=own_merchant_id)


def _filtered(
    products: QuerySet[Product],
    *,
    merchant_id: int | None = None,
    category: int | str | None = None,
    is_published: bool | None = None,
) -> QuerySet[Product]:
    if merchant_id is not None:
        products = products.filter(merchant_id=merchant_id)
    if category is not None:
        products = products.filter(_category_filter(category))
    if is_published is not None:
        products = products.filter(is_published=is_published)
    return products.order_by("id")


def _listings(products: QuerySet[Product]) -> QuerySet:
    """`products` as each product's stored JSON text (`PRODUCT`, kept by its trigger),
    for answers sent without building a model and a serializer per product."""
    stored = RawSQL(f"{Product._meta.db_table}.{PRODUCT_JSON_COLUMN}", ())  # noqa: S611 - names only
    return products.annotate(listing=stored).values_list("listing")


def _visible_slots(*, operator: bool, owner: bool) -> tuple[QuerySet[Product], dict]:
    """The products a compiled read sees, and its slots: an owner's merchant's."""
    slots = {"own_merchant_id": _STAND_INS["own_merchant_id"]} if owner else {}
    own_merchant_id = slots.get("own_merchant_id")
    return _products_visible(operator=operator, own_merchant_id=own_merchant_id), slots


@functools.cache
def _listing_page(
    *,
    operator: bool,
    owner: bool,
    merchant: bool,
    category: type | None,
    is_published: bool | None,
) -> CompiledPage:
    products, slots = _visible_slots(operator=operator, owner=owner)
    if merchant:
        slots["merchant_id"] = _STAND_INS["merchant_id"]
    if category is not None:
        slots["category"] = _STAND_INS["category_id" if category is int else "category_slug"]
    products = _filtered(
        products,
        merchant_id=slots.get("merchant_id"),
        category=slots.get("category"),
        is_published=is_published,
    )
    return CompiledPage(_listings(products), slots=slots)


@replica_reads
def product_listing_page(
    *,
    user,
    offset: int,
    limit: int,
    merchant_id: int | None = None,
    category: int | str | None = None,
    is_published: bool | None = None,
) -> CountedPage:
    """A page of the products `user` sees (`products_visible_to`), filtered, by id, as
    each one's stored JSON text (one column a row), and the count of all of them, by one
    statement compiled once per combination of filters."""
    operator, own_merchant_id = merchant_scope(user)
    page = _listing_page(
        operator=operator,
        owner=own_merchant_id is not None,
        merchant=merchant_id is not None,
        category=None if category is None else type(category),
        is_published=is_published,
    )
    given = {"own_merchant_id": own_merchant_id, "merchant_id": merchant_id, "category": category}
    values = {name: value for name, value in given.items() if value is not None}
    return page.read(offset=offset, limit=limit, **values)


@functools.cache
def _listing(*, operator: bool, owner: bool) -> tuple[CompiledQuery, PreparedStatement]:
    """The product's read, compiled once and prepared: PostgreSQL planned it in 0.6 ms
    and ran it in 0.1 (bench city)."""
    products, slots = _visible_slots(operator=operator, owner=owner)
    slots["product_id"] = _STAND_INS["product_id"]
    compiled = CompiledQuery(_listings(products.filter(pk=slots["product_id"])), slots=slots)
    return compiled, PreparedStatement(compiled.sql)


@replica_reads
def product_listing(*, user, product_id: int) -> str | None:
    """The stored JSON text of the product `product_id`, if `user` sees it."""
    operator, own_merchant_id = merchant_scope(user)
    compiled, statement = _listing(operator=operator, owner=own_merchant_id is not None)
    values = {"product_id": product_id}
    if own_merchant_id is not None:
        values["own_merchant_id"] = own_merchant_id
    rows = statement.fetch_all(compiled.params(**values))
    return rows[0][0] if rows else None


def product_visible(*, user, product_id: int) -> Product | None:
    return products_visible_to(user=user).filter(pk=product_id).first()


# products/nearby walks merchants in `<->` order through their GiST index, inside the exact
# spheroid ST_DWithin radius, and for each one takes its matching products by id through a
# LATERAL join, so the scan stops as soon as `limit` rows are found (`walked`). Only those
# rows get the exact spheroid ST_Distance, in centimetres as the answer shows it, which
# orders the answer: nearest merchant first, ties by product id.
# The walk's order is the sphere's (`<->`), not the spheroid's, and merchants as far as
# each other come in no particular order. So once the walk has found `limit` rows, a
# merchant it did not reach may be as near as its farthest row (by up to half a percent,
# or exactly, with lower product ids): the merchants within that distance (`reach`, a
# range of the same index: those walked and any such) are read too, all but those whose
# rows were all walked, and the answer is the nearest `limit` rows of them all. The last
# merchant walked had its products cut by the limit; the rest of them can only displace a
# walked row of another merchant as far or farther (`cut`), and they are read again then.
# Fewer than `limit` rows mean the walk read the whole radius.
# `{product_columns}` is what each product row brings: its fields, or (for the answer) its
# stored JSON. Each row carries the merchant columns NEARBY_MERCHANT reads, as
# `merchant_<column>`.
_NEARBY_ROWS_SQL = """
    SELECT m.id AS walked_merchant, {merchant_columns}, p.*
    FROM ({merchants}
    ) m
    CROSS JOIN LATERAL (
        SELECT {product_columns}, COALESCE(i.quantity, 0) AS quantity
        FROM catalog_product p
        LEFT JOIN inventory_inventory i ON i.product_id = p.id
        WHERE p.merchant_id = m.id AND p.is_published {product_filters}
        ORDER BY p.id
        LIMIT %(limit)s
    ) p"""
_NEARBY_DISTANCE = "round(ST_Distance(found.merchant_location, %(point)s::geography)::numeric, 2)"
PRODUCTS_NEARBY_SQL = f"""
WITH walked AS MATERIALIZED (
    SELECT found.*, {_NEARBY_DISTANCE} AS distance_m, row_number() OVER () AS walk_order
    FROM ({{rows}}
        LIMIT %(limit)s
    ) found
),
reach AS (
    SELECT count(*) >= %(limit)s AS filled, max(distance_m) + 0.01 AS metres FROM walked
),
cut AS (
    SELECT last.walked_merchant
    FROM (SELECT walked_merchant, distance_m FROM walked ORDER BY walk_order DESC LIMIT 1) last
    WHERE (SELECT filled FROM reach) AND EXISTS (
        SELECT 1 FROM walked w
        WHERE w.walked_merchant <> last.walked_merchant AND w.distance_m >= last.distance_m)
),
kept AS (
    SELECT * FROM walked WHERE walked_merchant NOT IN (SELECT walked_merchant FROM cut)
)
SELECT * FROM (
    SELECT * FROM kept
    UNION ALL
    SELECT found.*, {_NEARBY_DISTANCE} AS distance_m, 0 AS walk_order
    FROM ({{rows}}
        WHERE (SELECT filled FROM reach)
          AND ST_DWithin(m.location, %(point)s::geography, (SELECT metres FROM reach))
          AND m.id <> ALL (ARRAY(SELECT walked_merchant FROM kept))
    ) found
) found
ORDER BY distance_m, found.id
LIMIT %(limit)s
"""  # noqa: S608 - only a fixed fragment is interpolated


def _merchant_columns() -> list[str]:
    """The merchants_merchant columns a nearby row carries: those NEARBY_MERCHANT reads,
    and the id and location the walk itself needs."""
    named = [item.column.removeprefix("merchant_") for item in NEARBY_MERCHANT.fields]
    return list(dict.fromkeys(["id", "location", *named]))


def products_nearby_rows_sql(
    *, product_columns: str, deliverable: bool, product_filters: str, open_at: bool = False
) -> str:
    columns = _merchant_columns()
    rows = _NEARBY_ROWS_SQL.format(
        merchants=merchants_walk_sql(columns=columns, delivering=deliverable, open_at=open_at),
        merchant_columns=", ".join(f"m.{column} AS merchant_{column}" for column in columns),
        product_columns=product_columns,
        product_filters=product_filters,
    )
    return PRODUCTS_NEARBY_SQL.format(rows=rows)


# Every field of a product row, for reading the nearby rows themselves (the bench's raw SQL
# baseline does).
PRODUCT_FIELDS = ", ".join(f"p.{column}" for column in PRODUCT.names)


def products_nearby_statement(
    *,
    lat: float,
    lng: float,
    radius: float,
    limit: int,
    q: str | None = None,
    category: int | str | None = None,
    min_price=None,
    max_price=None,
    in_stock: bool = True,
    deliverable: bool = False,
    open_now: bool = False,
    open_at: datetime | None = None,
) -> tuple[str, dict]:
    """The statement rendering the products/nearby answer as JSON text, and its parameters
    (`radius` in metres), for Django's connection or the ASGI server's own pool
    (`catalog.nearby_route`)."""
    params: dict = {
        "point": point_ewkt(lat=lat, lng=lng),
        "radius": radius,
        "limit": limit,
        "open_at": open_instant(open_now=open_now, open_at=open_at),
    }
    by_category = None
    if isinstance(category, int):
        by_category = "id"
        params["category_id"] = category
    elif category is not None:
        by_category = "slug"
        params["slug"] = category
    if min_price is not None:
        params["min_price"] = min_price
    if max_price is not None:
        params["max_price"] = max_price
    if q:
        params["q"] = q
    sql = _products_nearby_sql(
        in_stock=in_stock,
        by_category=by_category,
        min_price=min_price is not None,
        max_price=max_price is not None,
        q=bool(q),
        deliverable=deliverable,
        open_at=params["open_at"] is not None,
    )
    return sql, params


@functools.cache
def _products_nearby_sql(
    *,
    in_stock: bool,
    by_category: str | None,
    min_price: bool,
    max_price: bool,
    q: bool,
    deliverable: bool,
    open_at: bool,
) -> str:
    """The statement for one combination of filters, built once: the same string object
    each time, whose hash psycopg's statement caches then reuse."""
    filters: list[str] = []
    if in_stock:
        filters.append("i.quantity > 0")
    if by_category == "id":
        filters.append("p.category_id = %(category_id)s")
    elif by_category == "slug":
        filters.append(
            "p.category_id = (SELECT id FROM catalog_productcategory WHERE slug = %(slug)s)"
        )
    if min_price:
        filters.append("p.price >= %(min_price)s")
    if max_price:
        filters.append("p.price <= %(max_price)s")
    if q:
        filters.append("p.search_vector @@ websearch_to_tsquery('english', %(q)s)")
    rows = products_nearby_rows_sql(
        product_columns=f"p.id, p.{PRODUCT_JSON_COLUMN}",
        deliverable=deliverable,
        open_at=open_at,
        product_filters="".join(f" AND {clause}" for clause in filters),
    )
    # The whole answer rendered by PostgreSQL, sent as it is: each product's JSON is kept
    # in its row (`catalog.stored_json`), the rest rendered from PRODUCT_NEARBY.
    return json_array_sql(
        PRODUCT_NEARBY, rows, order_by=("distance_m", "id"), before='{"results":[', after="]}"
    )


@replica_reads
def products_nearby_answer(**filters) -> bytes:
    """The products/nearby answer's body for `products_nearby_statement(**filters)`."""
    return fetch_value(*products_nearby_statement(**filters)).encode()


# The sorts search offers: relevance (ranked by `_SEARCH_RANKED_SQL`), and orders by
# columns of catalog_product ("-" for descending), each ending on the id so that pages
# never overlap.
SEARCH_SORTS = {
    "relevance": (),
    "price": ("price", "id"),
    "-price": ("-price", "id"),
    "newest": ("-created_at", "-id"),
}

# Search counts its matches exactly up to this many. Past it, the answer's count is the
# planner's estimate (at least one more), and says so; relevance ranks this many
# candidates (see `_SEARCH_RANKED_SQL`).
SEARCH_COUNT_BOUND = 1000

_QUERY = "websearch_to_tsquery('english', %(q)s)"
# Whether the query is one word, and that word: what the walk of catalog_productterm
# needs.
_ONE_WORD = f"numnode({_QUERY}) = 1"
_WORD = f"(tsvector_to_array({_QUERY}::text::tsvector))[1]"

# The columns of a search result's row `r`, read from `p` (catalog_product), and those
# of them its answer is rendered from (`catalog.serializers.product_search_results`): the
# product's stored JSON, its category's name and its stock. Rendering the product from
# its stored JSON spares reading and formatting its time and price in Python. The name
# and the stock are subqueries, not joins: a product has one of each (a foreign key, a
# unique key), and PostgreSQL plans two small subqueries faster than a join of four
# tables, which it plans afresh for every search (0.5 to 0.9 ms less of 2.3 to 2.6 ms of
# planning on the demo city).
_RESULT_COLUMNS = f"""
    p.id, p.price, p.created_at, p.{PRODUCT_JSON_COLUMN} AS product,
    (SELECT c.name FROM catalog_productcategory c WHERE c.id = p.category_id) AS category_name,
    COALESCE((SELECT i.quantity FROM inventory_inventory i WHERE i.product_id = p.id), 0)
        AS quantity"""  # noqa: S608 - only a column name is interpolated
_RESULT_READ = "r.id, r.product, r.category_name, r.quantity"

# The count: exact up to the bound, else the planner's estimate of the rows matching the
# query and the filters it can estimate (`catalog_product_search_estimate`, migration
# 0005), at least one past the bound. A one-row CTE over `{counted}`: the estimate is
# planned once, and only when needed.
_SUMMARY_SQL = f"""
summary AS (
    SELECT found, CASE WHEN found > %(bound)s THEN GREATEST(%(bound)s + 1, round(
        catalog_product_search_estimate(
            CASE WHEN %(q)s::text IS NULL THEN NULL ELSE {_QUERY} END,
            %(min_price)s::numeric, %(max_price)s::numeric, %(merchant_id)s::bigint,
            {{category_id}})))::bigint
    END AS estimate
    FROM (SELECT count(*) AS found FROM ({{counted}}) counted) c
)"""  # noqa: S608 - only a fixed fragment is interpolated

_RANKED_COUNTED_SQL = "SELECT 1 FROM found WHERE pos <= %(bound)s + 1"

# Relevance: one statement answering the page and the count.
# 1. `found`: the matches in candidate order, each numbered (`pos`), as many as the
#    bound (plus one, to tell an exact count) or the page needs:
#    - a one-word query first walks the word's products best first, ties by id, from
#      catalog_productterm's key (title and category matches, filtered as they are read);
#    - then the other matches, from the GIN index in its own order: description matches
#      of a one-word query, every match of any other query.
#    Each branch stops as soon as the LIMIT is met.
# 2. `ranked`: the first `bound` candidates ordered by ts_rank_cd (the walked ones keep
#    their order), ties by id; candidates past the bound (deep pages only) follow in
#    candidate order.
# 3. The page's rows are read by id, with their category and stock.
# The matches of the GIN index (`found`'s second branch): each with its rank, in the
# index's own order, as many as `scan`; for a one-word query, only those matching it
# elsewhere than in the title and category name (the walk has those).
_SEARCH_MATCHES_SQL = f"""
SELECT p.id, ts_rank_cd(p.search_vector, {_QUERY}) AS rank
FROM catalog_product p
WHERE p.search_vector @@ {_QUERY} AND p.is_published {{product_filters}}
  AND NOT ({_ONE_WORD} AND ts_filter(p.search_vector, '{{{{a,b}}}}') @@ {_QUERY})
LIMIT %(scan)s
"""  # noqa: S608 - only fixed fragments are interpolated

_SEARCH_RANKED_SQL = f"""
WITH found AS (
    SELECT s.*, row_number() OVER () AS pos
    FROM (
        (SELECT t.product_id AS id, 1 AS tier, -t.rank_key AS rank
         FROM catalog_productterm t
         WHERE t.lexeme = {_WORD} AND {_ONE_WORD} {{term_filters}}
         ORDER BY t.rank_key, t.product_id
         LIMIT %(scan)s)
        UNION ALL
        (SELECT m.id, 2, m.rank FROM {{matches}} m)
    ) s
    LIMIT %(scan)s
),
ranked AS (
    SELECT id, CASE WHEN pos <= %(bound)s
        THEN row_number() OVER (ORDER BY pos > %(bound)s, tier, rank DESC, id)
        ELSE pos END AS ord
    FROM found
),
{_SUMMARY_SQL.format(counted=_RANKED_COUNTED_SQL, category_id="{category_id}")}
SELECT s.found, s.estimate, {_RESULT_READ}
FROM summary s
LEFT JOIN LATERAL (
    SELECT {_RESULT_COLUMNS}, ranked.ord
    FROM ranked
    JOIN catalog_product p ON p.id = ranked.id
    WHERE ranked.ord > %(offset)s AND ranked.ord <= %(offset)s + %(limit)s
) r ON true
ORDER BY r.ord
"""  # noqa: S608 - only fixed fragments are interpolated

_SORTED_COUNTED_SQL = """
    SELECT 1 FROM catalog_product p WHERE p.is_published {match} {product_filters}
    LIMIT %(bound)s + 1"""

# An explicit sort (or no query): the page in that order over every match, and the
# count of the first `bound` + 1, in one statement.
_SEARCH_SORTED_SQL = f"""
WITH {_SUMMARY_SQL.format(counted=_SORTED_COUNTED_SQL, category_id="{category_id}")}
SELECT s.found, s.estimate, {_RESULT_READ}
FROM summary s
LEFT JOIN LATERAL (
    SELECT {_RESULT_COLUMNS}
    FROM catalog_product p
    WHERE p.is_published {{match}} {{product_filters}}
    ORDER BY {{order}}
    OFFSET %(offset)s LIMIT %(limit)s
) r ON true
ORDER BY {{outer_order}}
"""  # noqa: S608 - only fixed fragments are interpolated


_ACTIVE_MERCHANT_FILTER = f"""EXISTS (
    SELECT 1 FROM ({MERCHANT_LOCATIONS_SQL}) m WHERE m.id = {{row}}.merchant_id AND m.is_active
)"""  # noqa: S608 - only a fixed fragment is interpolated
_IN_STOCK_FILTER = """EXISTS (
    SELECT 1 FROM inventory_inventory si WHERE si.product_id = {product_id} AND si.quantity > 0
)"""


def _search_filters(row: str, *, product_id: str, by_category: str | None, **given) -> str:
    """The filters of a search on the row `row` (columns price, merchant_id, category_id;
    its product's id is `product_id`), each ` AND ...` reading its named parameter."""
    clauses = [_ACTIVE_MERCHANT_FILTER.format(row=row)]
    if given["min_price"]:
        clauses.append(f"{row}.price >= %(min_price)s")
    if given["max_price"]:
        clauses.append(f"{row}.price <= %(max_price)s")
    if given["merchant_id"]:
        clauses.append(f"{row}.merchant_id = %(merchant_id)s")
    if by_category:
        clauses.append(f"{row}.category_id = {_CATEGORY_ID[by_category]}")
    if given["in_stock"]:
        clauses.append(_IN_STOCK_FILTER.format(product_id=product_id))
    return "".join(f" AND {clause}" for clause in clauses)


_CATEGORY_ID = {
    "id": "%(category_id)s",
    "slug": "(SELECT id FROM catalog_productcategory WHERE slug = %(slug)s)",
}


def _order(columns: tuple[str, ...], alias: str) -> str:
    return ", ".join(
        f"{alias}.{column[1:]} DESC" if column.startswith("-") else f"{alias}.{column}"
        for column in columns
    )


class SearchVariant(NamedTuple):
    """What a search's statement is built for: its sort, how its category is named
    (None, "id" or "slug"), which filters it has, and whether it has a query."""

    sort: str
    by_category: str | None
    min_price: bool
    max_price: bool
    merchant_id: bool
    in_stock: bool
    has_q: bool = True


def _search_variant_sql(variant: SearchVariant) -> str:
    """The statement for one combination of search parameters."""
    sort, by_category, *_, has_q = variant
    given = _given_filters(variant)
    product_filters = _search_filters("p", product_id="p.id", by_category=by_category, **given)
    category_id = _CATEGORY_ID[by_category] if by_category else "NULL::bigint"
    if sort == "relevance":
        term_filters = _search_filters(
            "t", product_id="t.product_id", by_category=by_category, **given
        )
        return _SEARCH_RANKED_SQL.format(
            category_id=category_id,
            term_filters=term_filters,
            matches=_search_matches_plan(variant).expression(),
        )
    columns = SEARCH_SORTS[sort]
    return _SEARCH_SORTED_SQL.format(
        category_id=category_id,
        match=f"AND p.search_vector @@ {_QUERY}" if has_q else "",
        product_filters=product_filters,
        order=_order(columns, "p"),
        outer_order=_order(columns, "r"),
    )


# The types of the search statements' parameters, as `products_search_statement` gives
# them. A deep page's offset passes an integer's range.
_SEARCH_TYPES = {
    "q": "text",
    "min_price": "numeric",
    "max_price": "numeric",
    "merchant_id": "bigint",
    "category_id": "bigint",
    "slug": "text",
    "bound": "integer",
    "scan": "bigint",
    "offset": "bigint",
    "limit": "bigint",
}
# A search's rows: `search_counted_page` reads them.
_SEARCH_ROW = (
    ("found", "bigint"),
    ("estimate", "bigint"),
    ("id", "bigint"),
    ("product", "text"),
    ("category_name", "varchar"),
    ("quantity", "integer"),
)
# The query is parsed once per search, not once per row read.
_SEARCH_COMPUTED = (
    Computed(_QUERY, "q_query", "tsquery"),
    Computed(_ONE_WORD, "q_one_word", "boolean"),
    Computed(_WORD, "q_word", "text"),
)
# Each filter's letter in the name of a kept search's function.
_FILTER_LETTERS = {"min_price": "l", "max_price": "h", "merchant_id": "m", "in_stock": "k"}
_CATEGORY_LETTERS = {None: "", "id": "c", "slug": "s"}


def _variant_letters(variant: SearchVariant) -> str:
    return _CATEGORY_LETTERS[variant.by_category] + "".join(
        letter for name, letter in _FILTER_LETTERS.items() if getattr(variant, name)
    )


def _given_filters(variant: SearchVariant) -> dict[str, bool]:
    return {name: getattr(variant, name) for name in _FILTER_LETTERS}


def _ranked_search_plan(variant: SearchVariant) -> KeptPlan:
    """The relevance statement for one combination of filters as a function whose plan
    each session keeps (`geomarket.kept_plans`): it took longer to plan than to run (0.9
    of 1.9 ms on the demo city). Its generic plan is the one a search's own values would
    get: it walks a word's products from catalog_productterm's key, stopping at its limit,
    whatever the word; the GIN index's matches come from `_search_matches_plan`."""
    return KeptPlan(
        name=f"catalog_search_ranked_{_variant_letters(variant)}".rstrip("_"),
        statement=_search_variant_sql(variant),
        types=_SEARCH_TYPES,
        returns=_SEARCH_ROW,
        computed=_SEARCH_COMPUTED,
        # The count's estimate past the bound runs EXPLAIN (a volatile function).
        volatility="VOLATILE",
    )


@functools.cache
def _search_matches_plan(variant: SearchVariant) -> KeptPlan:
    """The GIN index's matches for one combination of filters, as a kept plan that reads
    them from the index whatever the query. A plan made without the query cannot tell a
    rare word's few matches from a common word's many, and would walk the table for a
    small catalog, all of it for a rare word. The index's bitmap holds only the matches,
    read in table order until the limit is met: the few pages of a rare word, no more
    pages than a walk of the table would read for a common one. Planning it afresh on
    each search, to let the planner choose, cost a third of the whole search's time on
    the demo city."""
    product_filters = _search_filters(
        "p", product_id="p.id", by_category=variant.by_category, **_given_filters(variant)
    )
    return KeptPlan(
        name=f"catalog_search_matches_{_variant_letters(variant)}".rstrip("_"),
        statement=_SEARCH_MATCHES_SQL.format(product_filters=product_filters),
        types=_SEARCH_TYPES,
        returns=(("id", "bigint"), ("rank", "real")),
        computed=_SEARCH_COMPUTED[:2],
        # Sequential scans off alone left the planner a walk of another index over every
        # product (by merchant, or the published ones'), which a small catalog's plan took
        # when its merchants had statistics; with plain index scans off too, the products
        # are read only as bitmaps, where the word's GIN bitmap is the cheap one.
        settings={"enable_seqscan": "off", "enable_indexscan": "off"},
    )


# Every relevance search's function, by its combination of filters.
SEARCH_PLANS = {
    variant: _ranked_search_plan(variant)
    for variant in (
        SearchVariant("relevance", by_category, *flags)
        for by_category in _CATEGORY_LETTERS
        for flags in itertools.product((False, True), repeat=len(_FILTER_LETTERS))
    )
}


@functools.cache
def _search_sql(variant: SearchVariant) -> str:
    """The statement for one combination of search parameters, built once: a call of its
    kept plan for relevance; an explicit sort is planned with each search's values, as
    its best plan depends on them (a rare word's few matches sorted, or a walk of the
    sort's index for a common one)."""
    if variant.sort == "relevance":
        return SEARCH_PLANS[variant].call()
    return _search_variant_sql(variant)


def search_plan_kept(sql: str) -> bool:
    """Whether `sql` (of `products_search_statement`) calls a kept plan: a statement a
    connection may prepare, as its plan no longer depends on its values."""
    return sql in _kept_search_calls()


@functools.cache
def _kept_search_calls() -> frozenset[str]:
    return frozenset(plan.call() for plan in SEARCH_PLANS.values())


def products_search_statement(
    *,
    offset: int,
    limit: int,
    q: str | None = None,
    category: int | str | None = None,
    min_price=None,
    max_price=None,
    merchant_id: int | None = None,
    in_stock: bool | None = None,
    sort: str | None = None,
) -> tuple[str, dict]:
    """The statement of `products_search_page`, and its parameters: for Django's view
    and for the event loop's route (catalog/search_route.py) alike."""
    sort = sort or ("relevance" if q else "newest")
    if sort == "relevance" and not q:
        sort = "newest"
    by_category = None if category is None else ("id" if isinstance(category, int) else "slug")
    variant = SearchVariant(
        sort=sort,
        by_category=by_category,
        min_price=min_price is not None,
        max_price=max_price is not None,
        merchant_id=merchant_id is not None,
        in_stock=bool(in_stock),
        has_q=bool(q),
    )
    sql = _search_sql(variant)
    params = {
        "q": q or None,
        "min_price": min_price,
        "max_price": max_price,
        "merchant_id": merchant_id,
        "category_id": category if by_category == "id" else None,
        "slug": category if by_category == "slug" else None,
        "bound": SEARCH_COUNT_BOUND,
        "scan": max(SEARCH_COUNT_BOUND + 1, offset + limit),
        "offset": offset,
        "limit": limit,
    }
    return sql, params


def search_counted_page(rows: Sequence[tuple]) -> CountedPage:
    """The page and count that `products_search_statement`'s rows hold."""
    found, estimate = rows[0][0], rows[0][1]
    return CountedPage(
        rows=[row[3:] for row in rows if row[2] is not None],
        count=found if estimate is None else estimate,
        count_is_estimate=estimate is not None,
    )


@replica_reads
def products_search_page(*, offset: int, limit: int, **filters) -> CountedPage:
    """Published products of active merchants, full-text matched on title, category name
    and description, rows `offset` to `offset + limit` and the count, in one statement.
    `filters` are `ProductSearchParamsSerializer`'s validated data.

    Relevance (the default with `q`) ranks candidates by ts_rank_cd (title above category
    name above description) without reading every match: see `_SEARCH_RANKED_SQL`.
    """
    sql, params = products_search_statement(offset=offset, limit=limit, **filters)
    # A kept plan's call is prepared, as the event loop's route prepares it.
    kept = search_plan_kept(sql)
    rows = PreparedStatement(sql).fetch_all(params) if kept else fetch_all(sql, params)
    return search_counted_page(rows)


SUGGEST_LIMIT = 10

# A title is answered when a published product of an active merchant carries it, looked
# up through product_title_prefix (`c` is the candidate title).
_SUGGEST_TITLE_SHOWN = f"""(
    SELECT true FROM catalog_product p
    JOIN ({MERCHANT_LOCATIONS_SQL}) m ON m.id = p.merchant_id
    WHERE UPPER(p.title::text) = c.title_upper AND p.title = c.title
      AND p.is_published AND m.is_active
    LIMIT 1)"""  # noqa: S608 - a fixed fragment only

# The titles starting with `%(start)s` (the query as given, upper-cased as the index
# holds titles) lie from it to the least text past them all, in the byte order of the
# prefix index (`text_pattern_ops`): its last character's successor, past the
# surrogates, or a bound past every title after the last code point. Spelled out, the
# range is an index condition even in a plan made without the query (PostgreSQL derives
# one from a LIKE pattern only when it knows the pattern); `starts_with` decides, as
# `LIKE` with the query's `%`, `_` and `\` escaped would (the trigram index, which
# serves `LIKE`, would only add a bitmap of every title holding the letters).
_SUGGEST_START = "UPPER(%(start)s)"
_SUGGEST_LAST = f"ascii(right({_SUGGEST_START}, 1))"
_SUGGEST_END = (
    f"CASE WHEN {_SUGGEST_LAST} = 1114111 THEN repeat(chr(1114111), 1000)"
    f" ELSE left({_SUGGEST_START}, -1)"
    f" || chr(CASE WHEN {_SUGGEST_LAST} = 55295 THEN 57344 ELSE {_SUGGEST_LAST} + 1 END) END"
)

# The titles containing `%(contains)s` but not starting with `%(start)s`, in title order:
# planned with each query's values, as the trigram index reads few titles for most
# letters and many for common ones, which a plan made without them cannot tell apart
# (over a few thousand titles it read them all).
SUGGEST_CONTAINING = KeptPlan(
    name="catalog_suggest_containing",
    statement=f"""
SELECT t.title, t.title_upper FROM catalog_producttitle t
WHERE t.title_upper LIKE UPPER(%(contains)s) AND NOT starts_with(t.title_upper, {_SUGGEST_START})
ORDER BY t.title
""",  # noqa: S608 - a fixed fragment only
    types={"start": "text", "contains": "text"},
    returns=(("title", "varchar"), ("title_upper", "text")),
    computed=(
        Computed(_SUGGEST_START, "q_start", "text"),
        Computed("UPPER(%(contains)s)", "q_contains", "text"),
    ),
    replanned=True,
)

# Suggest over catalog_producttitle, the distinct published titles (migration
# 0006_suggest_titles), in one statement: those starting with `%(start)s`, then, when
# fewer than the limit, those containing `%(contains)s` but not starting with it.
# Each branch sorts its matching titles first (`OFFSET 0` keeps the sort below the
# check), then checks them in that order and stops at the limit: walking the primary key
# in title order instead would read past every title before the first match (the "Org"
# titles come after 12,000 others). The check is a scalar subquery so that it is not
# planned as a join, which would check every match before the sort.
_SUGGEST_SQL = f"""
WITH prefix AS MATERIALIZED (
    SELECT c.title FROM (
        SELECT t.title, t.title_upper FROM catalog_producttitle t
        WHERE t.title_upper ~>=~ {_SUGGEST_START} AND t.title_upper ~<~ {_SUGGEST_END}
          AND starts_with(t.title_upper, {_SUGGEST_START})
        ORDER BY t.title OFFSET 0
    ) c
    WHERE {_SUGGEST_TITLE_SHOWN}
    ORDER BY c.title
    LIMIT %(limit)s
)
SELECT title FROM (
    SELECT title, 1 AS tier FROM prefix
    UNION ALL
    (SELECT c.title, 2 FROM (
        SELECT s.title, s.title_upper FROM {SUGGEST_CONTAINING.expression()} s
        WHERE (SELECT count(*) FROM prefix) < %(limit)s
        ORDER BY s.title OFFSET 0
     ) c
     WHERE {_SUGGEST_TITLE_SHOWN}
     ORDER BY c.title
     LIMIT %(limit)s)
) found
ORDER BY tier, title
LIMIT %(limit)s
"""  # noqa: S608 - only fixed fragments are interpolated


# Suggest's statement, planned once per session: planning it took three times as long as
# running it (0.76 and 0.23 ms on the demo city). The patterns are upper-cased once.
SUGGEST_PLAN = KeptPlan(
    name="catalog_suggest_titles",
    statement=_SUGGEST_SQL,
    types={"start": "text", "contains": "text", "limit": "integer"},
    returns=(("title", "varchar"),),
    computed=(
        Computed(_SUGGEST_START, "q_start", "text"),
        Computed(_SUGGEST_END, "q_end", "text"),
    ),
)

# Its call, prepared on the connection: the function keeps the statement's plan, and the
# connection then keeps the call's own parsing and planning, a tenth of a suggestion's
# time in PostgreSQL on the bench city.
_SUGGEST_CALL = PreparedStatement(SUGGEST_PLAN.call())


@replica_reads
def product_title_suggestions(*, q: str) -> list[str]:
    """Up to 10 distinct titles of published products of active merchants: those starting
    with `q`, then those containing it, each in title order; case-insensitive as Django's
    istartswith/icontains (UPPER on both sides), `%`, `_` and `\\` in `q` taken literally."""
    rows = _SUGGEST_CALL.fetch_all(suggest_params(q))
    return [row[0] for row in rows]


def suggest_params(q: str) -> dict:
    """The parameters of suggest's statement for the query `q`."""
    escaped = connection.ops.prep_for_like_query(q)
    return {"start": q, "contains": f"%{escaped}%", "limit": SUGGEST_LIMIT}


# For another app's statement (orders checks an order's products in the same round trip
# as its merchant and zone): the published products among `%(product_ids)s` of the
# merchant whose id is the SQL expression `{merchant}`, as one row of three parallel
# arrays `ids`, `titles`, `prices` (NULL when none). Format `{merchant}` in, then run it
# LATERAL to the merchant's row.
MERCHANT_PUBLISHED_PRODUCTS_SQL = """
SELECT array_agg(p.id) AS ids, array_agg(p.title) AS titles, array_agg(p.price) AS prices
FROM catalog_product p
WHERE p.id = ANY(%(product_ids)s::bigint[]) AND p.merchant_id = {merchant} AND p.is_published
"""


# The statements whose plans each session keeps, installed after each `migrate`.
KEPT_PLANS = (
    *SEARCH_PLANS.values(),
    *(_search_matches_plan(variant) for variant in SEARCH_PLANS),
    SUGGEST_PLAN,
    SUGGEST_CONTAINING,
)
