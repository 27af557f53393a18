"""`search/products` answered on the ASGI event loop, for anonymous searches.

An uncached search on the demo city spends about 3 ms in PostgreSQL and as much again in
Django around it (a thread hop, the middleware chain, DRF's dispatch, the answer cache's
round trips), and search is the busiest read customer apps make that the front cache
cannot answer: every new word or price limit is a new request. This route runs the
view's own statement (`products_search_statement`) through the lane's pool and builds the
view's own page (`page_body`, `product_search_results`, `json_bytes`), so its bytes are
the view's.

As the nearby route (catalog/nearby_route.py, geomarket/lane/anonymous_routes.py), it
answers only anonymous `GET`s whose parameters `parse_query` accepts (derived from
`ProductSearchParamsSerializer`, and the paginator's own reading of `page` and
`page_size`), for a scheme, host and `Accept` Django has answered a search for with a 200.
`page=last`, a page past the end, and anything invalid or unusual go to Django, which
alone words the 404 or 400.
"""

from catalog.selectors import (
    products_search_statement,
    search_counted_page,
    search_plan_kept,
)
from catalog.serializers import (
    SEARCH_PARAM_NAMES,
    ProductSearchParamsSerializer,
    product_search_results,
)
from geomarket.api.pagination import (
    page_body,
    page_link_base,
    plain_page_request,
    total_pages,
    with_estimate_flag,
)
from geomarket.api.responses import json_bytes
from geomarket.lane import async_db, front_cache
from geomarket.lane.anonymous_routes import anonymous_route
from geomarket.lane.learned_headers import Learned
from geomarket.lane.params import MAX_FIELDS, query_parser

_filters = query_parser(ProductSearchParamsSerializer)


def parse_query(raw: bytes) -> dict | None:
    """The search's filters as the serializer validates them, the page asked for and the
    parameters given (for the page's links), or None for a query only Django should
    answer."""
    filters = _filters(raw)
    if filters is None:
        return None
    given = front_cache.query_pairs(raw, max_fields=MAX_FIELDS)
    page = plain_page_request(given)
    if page is None:
        return None
    number, size = page
    return {"filters": filters, "number": number, "size": size, "given": given}


def statement(*, filters: dict, number: int, size: int, given: dict) -> tuple[str, dict]:
    return products_search_statement(offset=(number - 1) * size, limit=size, **filters)


async def _answer(query: dict, headers: Learned) -> bytes | None:
    if headers.base_url is None:
        return None
    sql, params = statement(**query)
    # A relevance search calls its kept plan, a call the connection may prepare. A sort
    # is planned with each search's own words and limits, as Django's statement is: a
    # generic plan cannot tell a rare word from a common one there.
    rows = await async_db.fetch_all(sql, params, prepare=None if search_plan_kept(sql) else False)
    page = search_counted_page(rows)
    number, size = query["number"], query["size"]
    if number > total_pages(page.count, size):
        return None
    body = page_body(
        count=page.count,
        number=number,
        page_size=size,
        link_base=page_link_base(headers.base_url, query["given"], SEARCH_PARAM_NAMES),
        results=product_search_results(page.rows),
    )
    return json_bytes(with_estimate_flag(body, page.count_is_estimate))


FAST_ROUTES = (
    anonymous_route(
        url_name="search-products",
        parse=parse_query,
        statement=statement,
        answer=_answer,
        enabled="SEARCH_ROUTE",
        label="search/products",
    ),
)
