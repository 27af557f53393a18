"""A fast-route module whose route names a URL that does not exist."""

from catalog import nearby_route
from geomarket.lane.routes import FastRoute

FAST_ROUTES = (
    FastRoute(
        url_name="products-nearby-typo",
        parse=nearby_route.parse_query,
        statement=nearby_route.products_nearby_statement,
        auth=nearby_route.front_cache.anonymous_identity,
        respond=nearby_route.respond,
        learn_headers=nearby_route.learn_headers,
    ),
)
