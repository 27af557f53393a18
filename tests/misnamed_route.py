"""A fast-route module whose route names a URL that does not exist."""

import dataclasses

from catalog import nearby_route

FAST_ROUTES = (dataclasses.replace(nearby_route.FAST_ROUTES[0], url_name="products-nearby-typo"),)
