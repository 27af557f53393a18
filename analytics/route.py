"""The small operator reports answered on the ASGI event loop: `revenue`, and
`top-products` for one merchant.

Through Django a report request costs about 3 ms of server CPU (a thread hop, the
middleware chain, DRF's dispatch, token authentication through the ORM, the parameter
serializer, rendering) and PostgreSQL plans its SQL on every call (Django binds
parameters on the client), while one merchant's revenue over 90 days takes PostgreSQL
about 1 ms. This route sends the same compiled statements (`analytics.selectors`)
through the async pool, where they are prepared once per connection, checks the caller
inside the statement (`operator_key`), and has PostgreSQL render the answer exactly as
DRF's JSON renderer renders the rows (`json_array_sql`). It costs about 0.35 ms of
server CPU.

It answers only what Django would answer with a 200 and hands every other request to
Django unchanged:
- `GET`s without a body or cookies, carrying `Authorization: Token <key>`, whose key
  belongs to an active staff user (an operator). Unknown keys, inactive users and
  everyone else get Django's 401 or 403;
- whose parameters `parse_revenue` or `parse_top_products` accepts: derived from the
  report's parameter serializer (`geomarket.lane.params`), they accept a subset of what
  it accepts, giving the same values. `format`, repeated or unusual parameters and
  anything invalid go to Django, which alone words the 400;
- for a path, scheme, host and `Accept` that Django has answered with a JSON 200 in this
  process (`geomarket.lane.learned_headers`).

Large reports (top products of every merchant, the merchants report) stay with Django:
taking in and sending their megabytes here would hold up every other request on the
loop.
When the database fails, Django answers instead.
"""

import psycopg
from django.conf import settings

from analytics.selectors import revenue_json_statement, top_products_json_statement
from analytics.serializers import RevenueParamsSerializer, TopProductsParamsSerializer
from geomarket.accounts.selectors import operator_token_statement
from geomarket.db import replicas
from geomarket.db.replicas import replica_scope
from geomarket.lane import async_db, token_routes
from geomarket.lane.learned_headers import send_ok
from geomarket.lane.params import query_parser
from geomarket.lane.routes import FastRoute

# The compiled statements read ids as 32-bit integers; larger ids go to Django.
_MAX_ID = 2**31 - 1
_revenue_params = query_parser(RevenueParamsSerializer)
_top_products_params = query_parser(TopProductsParamsSerializer)


def _id_fits(params: dict) -> bool:
    merchant_id = params.get("merchant_id")
    return merchant_id is None or merchant_id <= _MAX_ID


def parse_revenue(raw: bytes) -> dict | None:
    """`revenue_statement`'s arguments, as `RevenueParamsSerializer` validates them, or
    None for a query only Django should answer."""
    params = _revenue_params(raw)
    if params is None or not _id_fits(params):
        return None
    return {
        "range_": params["range_"],
        "interval": params["interval"],
        "merchant_id": params.get("merchant_id"),
    }


def parse_top_products(raw: bytes) -> dict | None:
    """`top_products_statement`'s arguments for one merchant, as
    `TopProductsParamsSerializer` validates them, or None."""
    params = _top_products_params(raw)
    if params is None or "merchant_id" not in params or not _id_fits(params):
        return None
    return {"range_": params["range_"], "merchant_id": params["merchant_id"], "top": params["top"]}


async def respond(route, scope, send, **_) -> bool:
    """Answer the request here and return True, or return False for Django to answer it.

    The statement is guarded: its answer is `[]` for anyone but an active operator
    holding the caller's key.
    """
    if not settings.ANALYTICS_ROUTE:
        return False
    caller = token_routes.learned_caller(route, scope)
    if caller is None or async_db.resting():
        return False
    key, headers = caller
    arguments = route.parse(scope.get("query_string", b""))
    if arguments is None:
        return False
    try:
        statement = route.statement(**arguments, operator_key=key)
        # A replica may not have replayed a key's revocation or a role taken away yet: with
        # replicas, the caller is checked on the primary before the report is read there.
        checked = replicas.configured()
        if checked and await _operator_holds(key) is None:
            return False
        with replica_scope():
            body = (await async_db.fetch_value(statement.sql, statement.params)).encode()
        # No rows, or no operator holding the key where the report was read (with replicas,
        # one that has not replayed a new key yet): Django answers, and words a 401 or 403.
        if body == b"[]" and (checked or await _operator_holds(key) is None):
            return False
    except psycopg.Error as exc:
        async_db.failed(exc, route="analytics")
        return False
    await send_ok(send, headers, body)
    return True


async def _operator_holds(key: str):
    """A row when an active operator holds the key, read on the primary."""
    return await async_db.fetch_one(*operator_token_statement(key=key))


def _report(url_name: str, parse, json_statement) -> FastRoute:
    return FastRoute(
        url_name=url_name,
        parse=parse,
        statement=json_statement,
        auth=token_routes.token_caller,
        respond=respond,
        learn_headers=token_routes.learn_headers,
    )


FAST_ROUTES = (
    _report("analytics-revenue", parse_revenue, revenue_json_statement),
    _report("analytics-top-products", parse_top_products, top_products_json_statement),
)
