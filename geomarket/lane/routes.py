"""The fast routes: requests an app answers on the event loop with one statement.

An app declares its routes in a module of its own, as a `FAST_ROUTES` sequence of
`FastRoute`, and the `FAST_ROUTES` setting lists those modules; the lane imports them
from the setting, so `geomarket` imports no app. Each route names its Django view by URL
name, which is resolved once, when the server starts (`routes_by_path`).
"""

import importlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.urls import reverse

from geomarket.lane.learned_headers import LearnedHeaders


@dataclass(frozen=True, slots=True)
class FastRoute:
    """One Django view's plainest requests, answered on the event loop.

    A route answers only what the view would answer with a 200, in the view's own bytes,
    and hands every other request to Django.
    """

    # The Django view this route answers for.
    url_name: str
    # The parameter declaration: the raw query string (the body, for a `POST` route) to
    # the statement's arguments, as the view's serializer validates them, or None for a
    # request only Django should answer.
    parse: Callable[[bytes], dict | None]
    # The statement that renders the answer, from the parsed arguments.
    statement: Callable[..., Any]
    # The auth policy: who may be answered here. The caller read from the ASGI scope,
    # or None for a request only Django may answer.
    auth: Callable[[dict], Any]
    # Answers the request and returns True, or returns False for Django to answer it:
    # `respond(route, scope, send, front=front_cache.Lookup)`.
    respond: Callable[..., Awaitable[bool]]
    # Remembers the headers of Django's answer to this view:
    # `learn_headers(route, scope, response)`.
    learn_headers: Callable[..., None]
    # "GET", or "POST" for a route that takes the request's body: `respond` is then
    # called only for `POST`s, once the body is read, with `body_file=` the file Django
    # reads it from (left where it was found, for Django to read it again).
    method: str = "GET"
    # The headers learned from Django's answers, for a route that keeps its own
    # (`anonymous_routes.anonymous_route`): tests forget them between tests.
    learned: LearnedHeaders | None = None


def declared_routes(modules: list[str] | None = None) -> list[FastRoute]:
    """Every route of `modules` (by default, those `FAST_ROUTES` lists), in that order."""
    if modules is None:
        modules = settings.FAST_ROUTES
    return [route for module in modules for route in importlib.import_module(module).FAST_ROUTES]


def routes_by_path() -> dict[str, FastRoute]:
    """The declared routes by the path of their view, resolved now: the server looks a
    request's path up in this once, instead of resolving names per request."""
    return {reverse(route.url_name): route for route in declared_routes()}
