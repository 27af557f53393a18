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

import psycopg
from django.conf import settings

from catalog.selectors import products_nearby_statement
from catalog.serializers import ProductsNearbyParamsSerializer
from geomarket import answer_cache
from geomarket.lane import async_db, front_cache
from geomarket.lane.learned_headers import LearnedHeaders, send_ok
from geomarket.lane.params import query_parser
from geomarket.lane.routes import FastRoute

# The validated parameters, as `ProductsNearbyParamsSerializer.validated_data` holds
# them, or None for a query only Django should answer.
parse_query = query_parser(ProductsNearbyParamsSerializer)


# The headers of Django's 200 answers to anonymous nearby requests, by `request_identity`.
learned = LearnedHeaders()


def learn_headers(route, scope, response) -> None:
    """Remember the headers of Django's answer to an anonymous nearby request."""
    if response.status_code != 200 or response.streaming:
        return
    if response.cookies or not hasattr(response, "answer_versions"):
        return
    identity = route.auth(scope)
    if identity is not None:
        learned.learn(identity, response)


async def respond(route, scope, send, *, front: front_cache.Lookup) -> bool:
    """Answer the request here and return True, or return False for Django to answer it.

    `front` is the front cache's lookup of this request: the answer is filed under its
    key and the namespace versions it read, for the next identical request.
    """
    if not settings.NEARBY_ROUTE:
        return False
    versions = front.versions
    identity = route.auth(scope)
    headers = learned.get(identity) if identity is not None else None
    if headers is None:
        return False
    if versions is None and answer_cache.recovery_pending():
        # Redis is back after an outage: Django's cache layer invalidates what it missed.
        return False
    if async_db.resting():
        return False
    query = route.parse(scope.get("query_string", b""))
    if query is None:
        return False
    try:
        body = (await async_db.fetch_value(*route.statement(**query))).encode()
    except psycopg.Error as exc:
        async_db.failed(exc, route="products/nearby")
        return False
    await send_ok(send, headers, body, (b"x-cache", b"MISS"))
    # An answer of shops open now is true only now (as `ProductsNearbyApi` keeps none).
    if versions is not None and front.key is not None and not query["open_now"]:
        await front_cache.store_answer(
            front.key, versions=versions, headers=headers.text, wire_headers=headers.wire, body=body
        )
    return True


FAST_ROUTES = (
    FastRoute(
        url_name="products-nearby",
        parse=parse_query,
        statement=products_nearby_statement,
        auth=front_cache.anonymous_identity,
        respond=respond,
        learn_headers=learn_headers,
    ),
)
