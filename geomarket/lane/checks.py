"""Start-up checks of the lane: every declared route resolves, and the lane can honour
every middleware.

The lane answers with what Django's middleware did to an earlier answer: the front cache
replays that whole answer, a fast route its headers, for a request like it (same view,
scheme, host, forwarded scheme and `Accept`, no cookie); neither runs the middleware
chain. That stands in for a middleware only when the middleware does the
same thing to every such request. One that answers per request (a CORS one reading
`Origin`; GZip, which reads `Accept-Encoding`; request ids; tracing) would be silently
skipped by the lane, so it must be reviewed and added to `HONOURED_MIDDLEWARE` (with the
lane taught what it needs), or the server does not start.

Django runs these with every management command; `geomarket.asgi` runs them before it
serves.
"""

from django.conf import settings
from django.core.checks import Error, register
from django.urls import NoReverseMatch, reverse

from geomarket.lane.routes import declared_routes

TAG = "lane"

# The middleware the lane honours, each with why replaying Django's earlier headers
# gives what it would have done.
HONOURED_MIDDLEWARE = {
    "geomarket.api.middleware.RequestBodyLimitMiddleware": (
        "The lane answers GETs without a body and POSTs of a small JSON body, and the "
        "ASGI application's own RequestBodyLimit runs before the lane."
    ),
    "geomarket.api.cors.PublicReadsCorsMiddleware": (
        "Its headers depend only on the view, the method and whether the request carries "
        "credentials, never on `Origin`: the lane answers only anonymous GETs, each with "
        "the headers of Django's answer to an anonymous GET of the same view. Preflights "
        "are OPTIONS, which the lane leaves to Django."
    ),
    "geomarket.db.replicas.ReplicaReadsMiddleware": (
        "It reads a client's cookie and sets one on unsafe requests' answers: the lane "
        "answers no request with a cookie, and learns no answer that sets one. Its "
        "replica rules hold in the lane's pools too (geomarket/lane/async_db.py)."
    ),
    "django.middleware.security.SecurityMiddleware": (
        "Its headers depend only on the scheme and host, and its HTTPS redirect on the "
        "scheme, host and forwarded scheme: all part of the key headers are learned "
        "under, and only 200 answers are learned."
    ),
    "django.contrib.sessions.middleware.SessionMiddleware": (
        "The lane answers no request with a cookie, so there is no session to load, and "
        "learns no answer that sets one; its Vary: Cookie is in the learned headers."
    ),
    "django.middleware.common.CommonMiddleware": (
        "Its redirects (slash, www) follow from the path and host, which the lane matches "
        "exactly; DISALLOWED_USER_AGENTS, which reads a header the lane does not key on, "
        "must stay empty (checked below)."
    ),
    "django.middleware.csrf.CsrfViewMiddleware": (
        "It refuses only unsafe methods, and DRF's views are exempt: DRF checks CSRF "
        "for session callers only, and the lane answers no request with a cookie. It "
        "sets its cookie only on answers the lane does not learn."
    ),
    "django.contrib.auth.middleware.AuthenticationMiddleware": (
        "Without a cookie its user is anonymous; token callers are checked by the "
        "route's auth policy, as DRF checks them in the view."
    ),
    "django.contrib.messages.middleware.MessageMiddleware": (
        "Messages live in cookies and the session, which a request without a cookie "
        "does not have; an answer storing one sets a cookie and is not learned."
    ),
    "django.middleware.clickjacking.XFrameOptionsMiddleware": (
        "It sets the same X-Frame-Options on every answer of a view: learned with it."
    ),
}


@register(TAG)
def check_lane(app_configs=None, **kwargs) -> list[Error]:
    return [*_route_errors(), *_middleware_errors()]


def _route_errors() -> list[Error]:
    errors = []
    # The server keeps one route per path: a second would be silently dropped.
    declared_by: dict[str, str] = {}
    for module in settings.FAST_ROUTES:
        try:
            routes = declared_routes([module])
        except (ImportError, AttributeError) as exc:
            errors.append(
                Error(
                    f"FAST_ROUTES lists {module!r}, which declares no fast routes: {exc}",
                    hint="Name a module with a FAST_ROUTES sequence of FastRoute.",
                    id="lane.E001",
                )
            )
            continue
        for route in routes:
            try:
                path = reverse(route.url_name)
            except NoReverseMatch:
                errors.append(
                    Error(
                        f"The fast route of {module!r} names the URL {route.url_name!r}, "
                        "which does not resolve without arguments.",
                        hint="Use the name of the view's URL pattern in the root URLconf.",
                        id="lane.E002",
                    )
                )
                continue
            if path in declared_by:
                errors.append(
                    Error(
                        f"{module!r} and {declared_by[path]!r} both declare a fast route "
                        f"for {route.url_name!r}.",
                        hint="Declare each view's fast route once.",
                        id="lane.E005",
                    )
                )
            declared_by[path] = module
    return errors


def _middleware_errors() -> list[Error]:
    errors = [
        Error(
            f"MIDDLEWARE holds {name!r}, which the event-loop lane would bypass.",
            hint=(
                "The lane (front cache and fast routes) replays Django's earlier answers "
                "instead of running the middleware. Make sure the middleware does the same "
                "to every request the lane answers, teaching the lane what it needs, then "
                "add it to geomarket.lane.checks.HONOURED_MIDDLEWARE with the reason."
            ),
            id="lane.E003",
        )
        for name in settings.MIDDLEWARE
        if name not in HONOURED_MIDDLEWARE
    ]
    if settings.DISALLOWED_USER_AGENTS:
        errors.append(
            Error(
                "DISALLOWED_USER_AGENTS is set, and the lane does not read User-Agent.",
                hint="Refuse those agents in front of the server instead.",
                id="lane.E004",
            )
        )
    return errors
