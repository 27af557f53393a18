import functools

from django.contrib.postgres.search import SearchQuery, SearchRank
from django.db.models import F, Q, QuerySet
from django.db.models.functions import Coalesce

from catalog.models import Product, ProductCategory
from catalog.shapes import NEARBY_MERCHANT, PRODUCT, PRODUCT_JSON_COLUMN, PRODUCT_NEARBY
from geomarket.accounts.roles import is_operator, user_merchant_id
from geomarket.shapes import json_array_sql
from geomarket.sql import fetch_value, point_ewkt
from merchants.selectors import merchants_walk_sql


def category_list() -> QuerySet[ProductCategory]:
    return ProductCategory.objects.order_by("name", "id")


def _category_filter(category: int | str) -> Q:
    """A category by id (an int) or slug (a str), as `CategoryRefField` reads it."""
    return Q(category_id=category) if isinstance(category, int) else Q(category__slug=category)


def products_visible_to(*, user) -> QuerySet[Product]:
    """Published products of active merchants, plus the owner's own, or all for operators."""
    if is_operator(user):
        return Product.objects.all()
    public = Q(is_published=True, merchant__is_active=True)
    own_merchant_id = user_merchant_id(user)
    if own_merchant_id is not None:
        public |= Q(merchant_id=own_merchant_id)
    return Product.objects.filter(public)


def product_list(
    *,
    user,
    merchant_id: int | None = None,
    category: int | str | None = None,
    is_published: bool | None = None,
) -> QuerySet[Product]:
    products = products_visible_to(user=user)
    if merchant_id is not None:
        products = products.filter(merchant_id=merchant_id)
    if category is not None:
        products = products.filter(_category_filter(category))
    if is_published is not None:
        products = products.filter(is_published=is_published)
    return products.order_by("id")


def product_visible(*, user, product_id: int) -> Product | None:
    return products_visible_to(user=user).filter(pk=product_id).first()


# products/nearby walks merchants in `<->` order through their GiST index, inside the exact
# spheroid ST_DWithin radius, and for each one takes its matching products by id through a
# LATERAL join, so the scan stops as soon as `limit` rows are found. Only those rows get the
# exact spheroid ST_Distance, which then orders them (nearest merchant first, ties by id).
# `{product_columns}` is what each product row brings: its fields, or (for the answer) its
# stored JSON. Each row carries the merchant columns NEARBY_MERCHANT reads, as
# `merchant_<column>`.
PRODUCTS_NEARBY_SQL = """
SELECT found.*, ST_Distance(found.merchant_location, %(point)s::geography) AS distance_m
FROM (
    SELECT {merchant_columns}, p.*
    FROM ({merchants}
    ) m
    CROSS JOIN LATERAL (
        SELECT {product_columns}, COALESCE(i.quantity, 0) AS quantity
        FROM catalog_product p
        LEFT JOIN inventory_inventory i ON i.product_id = p.id
        WHERE p.merchant_id = m.id AND p.is_published {product_filters}
        ORDER BY p.id
        LIMIT %(limit)s
    ) p
    LIMIT %(limit)s
) found
ORDER BY distance_m, found.id
"""


def _merchant_columns() -> list[str]:
    """The merchants_merchant columns a nearby row carries: those NEARBY_MERCHANT reads,
    and the id and location the walk itself needs."""
    named = [item.column.removeprefix("merchant_") for item in NEARBY_MERCHANT.fields]
    return list(dict.fromkeys(["id", "location", *named]))


def products_nearby_rows_sql(
    *, product_columns: str, deliverable: bool, product_filters: str
) -> str:
    columns = _merchant_columns()
    return PRODUCTS_NEARBY_SQL.format(
        merchants=merchants_walk_sql(columns=columns, delivering=deliverable),
        merchant_columns=", ".join(f"m.{column} AS merchant_{column}" for column in columns),
        product_columns=product_columns,
        product_filters=product_filters,
    )


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
) -> tuple[str, dict]:
    """The statement rendering the products/nearby answer as JSON text, and its parameters
    (`radius` in metres), for Django's connection or the ASGI server's own pool
    (`catalog.nearby_route`)."""
    params: dict = {
        "point": point_ewkt(lat=lat, lng=lng),
        "radius": radius,
        "limit": limit,
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
        product_filters="".join(f" AND {clause}" for clause in filters),
    )
    # The whole answer rendered by PostgreSQL, sent as it is: each product's JSON is kept
    # in its row (`catalog.stored_json`), the rest rendered from PRODUCT_NEARBY.
    return json_array_sql(
        PRODUCT_NEARBY, rows, order_by=("distance_m", "id"), before='{"results":[', after="]}"
    )


def products_nearby_answer(**filters) -> bytes:
    """The products/nearby answer's body for `products_nearby_statement(**filters)`."""
    return fetch_value(*products_nearby_statement(**filters)).encode()


SEARCH_SORTS = {
    "relevance": ("-rank", "id"),
    "price": ("price", "id"),
    "-price": ("-price", "id"),
    "newest": ("-created_at", "-id"),
}


def products_search(
    *,
    q: str | None = None,
    category: int | str | None = None,
    min_price=None,
    max_price=None,
    merchant_id: int | None = None,
    in_stock: bool | None = None,
    sort: str | None = None,
) -> QuerySet[Product]:
    """Published products of active merchants, full-text matched on title, category name
    and description through the stored `search_vector` and its GIN index."""
    products = (
        Product.objects.filter(is_published=True, merchant__is_active=True)
        .select_related("category")
        .annotate(stock=Coalesce(F("inventory__quantity"), 0))
    )
    if q:
        query = SearchQuery(q, search_type="websearch", config="english")
        products = products.filter(search_vector=query).annotate(
            rank=SearchRank(F("search_vector"), query, cover_density=True)
        )
    if category is not None:
        products = products.filter(_category_filter(category))
    if min_price is not None:
        products = products.filter(price__gte=min_price)
    if max_price is not None:
        products = products.filter(price__lte=max_price)
    if merchant_id is not None:
        products = products.filter(merchant_id=merchant_id)
    if in_stock:
        products = products.filter(inventory__quantity__gt=0)
    sort = sort or ("relevance" if q else "newest")
    if sort == "relevance" and not q:
        sort = "newest"
    return products.order_by(*SEARCH_SORTS[sort])


SUGGEST_LIMIT = 10


def product_title_suggestions(*, q: str) -> list[str]:
    """Up to 10 distinct published titles: those starting with `q`, then those containing it.

    Both lookups compare UPPER(title), matching the partial pattern and trigram indexes.
    """
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
