"""`products/nearby` answered on the ASGI event loop, for the anonymous requests that
make up customer apps' map views.

Through Django, an uncached nearby answer costs about 4 ms of server CPU (a thread hop,
the middleware chain, DRF's dispatch and its parameter serializer) around a query that
takes PostgreSQL 0.5 ms. This route runs the same statement
(`products_nearby_statement`, which renders the answer in SQL) through an async pool,
without leaving the event loop.

It answers only what Django would answer with a 200 and nothing else, and hands every
other request to Django unchanged:
- anonymous `GET`s without a body (`front_cache.anonymous_identity`);
- whose parameters `parse_query` accepts: derived from `ProductsNearbyParamsSerializer`
  (`geomarket.lane.params`), it accepts a subset of what the serializer accepts, giving
  the same values. Anything missing, malformed, out of range or merely unusual goes to
  Django, which alone words the 400;
- for a scheme, host and `Accept` Django has already answered a nearby request for with
  a 200 in this process. The route copies the headers of that response (security
  headers, `Vary`, `Allow`), so it answers with what Django's middleware would set, and
  only for hosts Django's host validation and HTTPS redirect let through.

When the database fails, Django answers instead, in its own way (503 when down).
"""

from catalog.selectors import products_nearby_statement
from catalog.serializers import ProductsNearbyParamsSerializer
from geomarket.demand import unserved_record_async
from geomarket.lane import async_db
from geomarket.lane.anonymous_routes import anonymous_route
from geomarket.lane.params import query_parser

# The validated parameters, as `ProductsNearbyParamsSerializer.validated_data` holds
# them, or None for a query only Django should answer.
parse_query = query_parser(ProductsNearbyParamsSerializer)


async def _answer(query: dict, headers) -> bytes:
    body = (await async_db.fetch_value(*products_nearby_statement(**query))).encode()
    await unserved_record_async(body=body, lat=query["lat"], lng=query["lng"])
    return body


FAST_ROUTES = (
    anonymous_route(
        url_name="products-nearby",
        parse=parse_query,
        statement=products_nearby_statement,
        answer=_answer,
        enabled="NEARBY_ROUTE",
        label="products/nearby",
        # An answer of shops open now is true only now (as `ProductsNearbyApi` keeps none).
        keep=lambda query: not query["open_now"],
    ),
)
