"""`merchants/nearby` and `merchants/delivering-to` answered on the ASGI event loop, for
the anonymous requests customer apps make to show the shops around them.

Through Django each costs a few milliseconds of server CPU around its statement (a
thread hop, the middleware chain, DRF's dispatch and parameter serializer, and for
nearby DRF's renderer). These routes run the views' own statements
(`merchants_nearby_statement`, `merchants_delivering_to_statement`) through the lane's
pool, and answer in the views' own bytes: nearby's rows rendered by
`merchants_nearby_body`, delivering-to's answer rendered by PostgreSQL.

As the products/nearby route (catalog/nearby_route.py, geomarket/lane/anonymous_routes.py),
they answer only anonymous `GET`s whose parameters `parse_query` accepts (derived from the
views' serializers: `format=geojson`, and anything invalid or unusual, go to Django, which
alone words the 400), for a scheme, host and `Accept` Django has answered the view for
with a 200. An empty delivering-to answer counts as unserved demand (`geomarket.demand`),
as the view's does; one not about shops open now is filed in the front cache, kept no
longer than the first change of a shown merchant's open state, as the view keeps it.
"""

from geomarket.answer_cache import Expiring
from geomarket.demand import unserved_record_async
from geomarket.lane import async_db
from geomarket.lane.anonymous_routes import anonymous_route
from geomarket.lane.params import query_parser
from merchants.selectors import merchants_delivering_to_statement, merchants_nearby_statement
from merchants.serializers import (
    DeliveringToParamsSerializer,
    MerchantsNearbyParamsSerializer,
    merchants_nearby_body,
)

# Each view's validated parameters, as its serializer's `validated_data` holds them, or
# None for a query only Django should answer.
parse_nearby = query_parser(MerchantsNearbyParamsSerializer)
parse_delivering_to = query_parser(DeliveringToParamsSerializer)


async def _nearby_answer(query: dict, headers) -> bytes:
    return merchants_nearby_body(await async_db.fetch_dicts(*merchants_nearby_statement(**query)))


async def _delivering_to_answer(query: dict, headers) -> Expiring:
    body, changes_at = await async_db.fetch_one(*merchants_delivering_to_statement(**query))
    body = body.encode()
    await unserved_record_async(body=body, lat=query["lat"], lng=query["lng"])
    return Expiring(body, changes_at)


FAST_ROUTES = (
    anonymous_route(
        url_name="merchants-nearby",
        parse=parse_nearby,
        statement=merchants_nearby_statement,
        answer=_nearby_answer,
        enabled="MERCHANT_ROUTES",
        label="merchants/nearby",
        # The view keeps no answer.
        keep=False,
    ),
    anonymous_route(
        url_name="merchants-delivering-to",
        parse=parse_delivering_to,
        statement=merchants_delivering_to_statement,
        answer=_delivering_to_answer,
        enabled="MERCHANT_ROUTES",
        label="merchants/delivering-to",
        # Which merchants are open now changes with the clock, for merchants the answer
        # does not show too: the view keeps no such answer.
        keep=lambda query: not query["open_now"],
    ),
)
