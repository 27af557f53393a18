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
- whose parameters `parse_query` accepts: a strict subset of what
  `ProductsNearbyParamsSerializer` accepts, giving the same values. Anything missing,
  malformed, out of range or merely unusual goes to Django, which alone words the 400;
- for a scheme, host and `Accept` Django has already answered a nearby request for with
  a 200 in this process. The route copies the headers of that response (security
  headers, `Vary`, `Allow`), so it answers with what Django's middleware would set, and
  only for hosts Django's host validation and HTTPS redirect let through.

When the database fails, Django answers instead, in its own way (503 when down).
"""

import re
from decimal import Decimal

import psycopg
from django.conf import settings
from rest_framework.exceptions import ValidationError
from rest_framework.fields import BooleanField

from catalog.selectors import products_nearby_statement
from catalog.serializers import ProductsNearbyParamsSerializer
from geomarket import answer_cache
from geomarket.lane import async_db, front_cache
from geomarket.lane.learned_headers import LearnedHeaders, send_ok
from geomarket.lane.routes import FastRoute

# Plain spellings only; exponents, signs, spaces, long digit runs and digits other than
# ASCII's (which `\d` would match) go to Django.
_DEGREES = re.compile(r"-?[0-9]{1,3}(\.[0-9]{1,15})?")
_METRES = re.compile(r"[0-9]{1,5}(\.[0-9]{1,6})?")
_AMOUNT = re.compile(r"[0-9]{1,8}(\.[0-9]{1,2})?")
_CENT = Decimal("0.01")
_TRUE = frozenset(value for value in BooleanField.TRUE_VALUES if isinstance(value, str))
_FALSE = frozenset(value for value in BooleanField.FALSE_VALUES if isinstance(value, str))
# Far below Django's DATA_UPLOAD_MAX_NUMBER_FIELDS, whose 400 Django must give.
_MAX_FIELDS = 20


def _number(text: str | None, pattern: re.Pattern, low: float, high: float) -> float | None:
    if text is None or not pattern.fullmatch(text):
        return None
    value = float(text)
    return value if low <= value <= high else None


def _text(text: str, max_length: int) -> str | None:
    # DRF trims and refuses blank, NUL and surrogate text; such values go to Django.
    if not text or text != text.strip() or len(text) > max_length or not text.isprintable():
        return None
    return text


# Integers and category references are read by the serializer's own fields.
_FIELDS = ProductsNearbyParamsSerializer().fields


def _field(name: str, text: str):
    try:
        return _FIELDS[name].run_validation(text)
    except ValidationError:
        return None


def _flag(text: str | None, default: bool) -> bool | None:
    if text is None:
        return default
    lowered = text.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    return None


def parse_query(raw: bytes) -> dict | None:
    """The validated parameters, as `ProductsNearbyParamsSerializer.validated_data` holds
    them, or None for a query only Django should answer."""
    given = front_cache.query_pairs(raw, max_fields=_MAX_FIELDS)
    if given is None:
        return None
    lat = _number(given.get("lat"), _DEGREES, -90, 90)
    lng = _number(given.get("lng"), _DEGREES, -180, 180)
    radius = _number(given.get("radius", "5000"), _METRES, 0, 50_000)
    limit = _field("limit", given["limit"]) if "limit" in given else _FIELDS["limit"].default
    in_stock = _flag(given.get("in_stock"), True)
    deliverable = _flag(given.get("deliverable"), False)
    if None in (lat, lng, radius, limit, in_stock, deliverable) or radius == 0:
        return None
    query = {
        "lat": lat,
        "lng": lng,
        "radius": radius,
        "limit": limit,
        "in_stock": in_stock,
        "deliverable": deliverable,
    }
    if "q" in given:
        query["q"] = _text(given["q"], 200)
    if "category" in given:
        text = _text(given["category"], 100)
        query["category"] = None if text is None else _field("category", text)
    for name in ("min_price", "max_price"):
        if name in given:
            amount = given[name]
            query[name] = Decimal(amount).quantize(_CENT) if _AMOUNT.fullmatch(amount) else None
    if None in query.values():
        return None
    if "min_price" in query and "max_price" in query and query["min_price"] > query["max_price"]:
        return None
    return query


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
    if versions is not None and front.key is not None:
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
