"""Couriers' location pings answered on the ASGI event loop.

Pings are the busiest write of dispatch: 2,000 couriers pinging every 5 s are 400 a
second. Through Django a ping costs several milliseconds of server CPU (a thread hop,
the middleware chain, DRF's dispatch, token authentication through the ORM, the
serializer, rendering) around a statement that takes PostgreSQL a fraction of one. This
route runs the same statement (`courier_ping_by_token_statement`, which checks the
caller's token itself) through the lane's async pool, and reads the body and renders the
answer with the view's own parser, serializers and renderer.

It answers only what Django would answer with a 200, and hands every other request to
Django unchanged:
- `POST`s of a small JSON body carrying `Authorization: Token <key>` and no cookie
  (`token_routes.token_caller`), for a path, scheme, host and `Accept` that Django has
  answered a ping for with a 200 in this process;
- whose body the view's parser reads and whose ping the view's serializer accepts, as
  derived by `body_parser`; anything invalid or unusual goes to Django, which words the
  400;
- from an active user with a courier profile: the statement writes nothing for anyone
  else, and Django then answers the 401 or 403.

A courier that moved is published to the couriers' stream (the console's), and the live
streams of the orders it carries get the new point and estimate, once the statement has
committed, as through Django: once the answer is sent, on the event loop's own Redis
connection, behind the shared circuit breaker, so that Redis delays no ping and its outage
fails none.
When the database fails, Django answers instead; a ping whose outcome is unknown (the
connection lost after the commit) is sent again by Django and kept twice, at the same
point.
"""

import psycopg
from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.renderers import JSONRenderer

from delivery.serializers import LocationPingSerializer, ping_answer
from delivery.services import courier_ping_by_token_statement, courier_ping_outcome
from events.streams import ping_streams_publish_async
from geomarket.api.parsers import json_text_data
from geomarket.lane import async_db, token_routes
from geomarket.lane.learned_headers import send_ok
from geomarket.lane.params import body_parser
from geomarket.lane.routes import FastRoute

_renderer = JSONRenderer()
_ping = body_parser(LocationPingSerializer)


def parse_ping(body: bytes) -> dict | None:
    """The ping the view would take from this body (UTF-8: its `Content-Type` names no
    charset), or None for Django to answer."""
    try:
        return _ping(json_text_data(body.decode()))
    except (UnicodeDecodeError, ParseError):
        return None


async def respond(route, scope, send, *, body_file, **_) -> bool:
    """Answer the ping here and return True, or return False for Django to answer it."""
    if not settings.PING_ROUTE:
        return False
    caller = token_routes.learned_caller(route, scope)
    if caller is None or async_db.resting():
        return False
    key, headers = caller
    ping = route.parse(body_file.read())
    body_file.seek(0)
    if ping is None:
        return False
    try:
        row = await async_db.fetch_one(*route.statement(key=key, **ping))
    except psycopg.Error as exc:
        async_db.failed(exc, route="couriers/me/location")
        return False
    if row is None:
        return False
    answer, entries = courier_ping_outcome(row, lat=ping["lat"], lng=ping["lng"])
    await send_ok(send, headers, _renderer.render(ping_answer(answer)))
    # After the answer: the courier waits for no Redis round trip.
    await ping_streams_publish_async(entries=entries)
    return True


FAST_ROUTES = (
    FastRoute(
        url_name="courier-location",
        parse=parse_ping,
        statement=courier_ping_by_token_statement,
        auth=token_routes.token_caller,
        respond=respond,
        learn_headers=token_routes.learn_headers,
        method="POST",
    ),
)
