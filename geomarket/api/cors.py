"""Cross-origin reads of the public API, for web maps and apps served from other origins
(MapLibre, Leaflet, OpenLayers loading tiles and GeoJSON).

A view's reads are public when its permissions let an anonymous caller `GET` it:
`anonymous_may_call`, by which the schema marks the operations anyone may call, asked
once per view. A `GET` or `HEAD` of such a view that carries no credentials (no
`Authorization`, no cookie) is answered, whatever its status (a map must read a 400's
fields, a 429's wait), with `Access-Control-Allow-Origin: *` and the headers a client
reads exposed; its preflight (an `OPTIONS` asking for `GET` or `HEAD`, as a browser sends
before an `If-None-Match` its page set) is answered here. Nothing else gets a CORS header:
no request with credentials, no other method, no view that needs a caller; and
`Access-Control-Allow-Credentials` is never sent, so no browser hands a page of another
origin what a caller's cookie or token was answered. As the answer's CORS headers depend
on whether the request carried credentials, its `Vary` names both: a cache must not hand
an answer made for a caller to an anonymous page, nor the other way round.

The headers are the same whatever `Origin` says (no `Vary: Origin`), so the event-loop
lane, which answers anonymous `GET`s with the headers of Django's answer to one like it
and files whole answers in the front cache, sends them too (`geomarket.lane.checks`).

Not django-cors-headers: it chooses its paths by a regular expression of URLs, a second
list beside the views' permissions; it answers credentialed requests as anonymous ones;
and it sets its headers only on requests that carry `Origin`, an answer the lane (which
does not key on `Origin`) would replay to requests without one, or the other way round.
"""

import functools

from django.http import HttpResponse
from django.utils.cache import patch_vary_headers

from geomarket.api.permissions import anonymous_may_call
from geomarket.ratelimit import RATE_LIMIT_HEADERS

READS = frozenset(("GET", "HEAD"))
# The request headers that carry a caller, as the lane reads them too
# (`front_cache.anonymous_identity`).
CREDENTIALS = ("Cookie", "Authorization")
_CREDENTIALS_META = tuple(f"HTTP_{name.upper()}" for name in CREDENTIALS)
# What a page may read beside the headers every CORS answer shows (Content-Type,
# Content-Length, Cache-Control...): a tile's ETag to send back, the rate limit's budget,
# how long to wait after a 429 or a 503.
EXPOSED = ", ".join(("ETag", "Retry-After", *RATE_LIMIT_HEADERS))
# The headers a preflight lets a page send beyond the safelisted ones: an `Accept` past
# the safelisted length, and the validators of a tile it keeps.
ALLOWED_REQUEST_HEADERS = "Accept, If-None-Match, If-Modified-Since"
# Browsers cap it lower (Chromium at 2 hours): they then ask again.
PREFLIGHT_MAX_AGE_SECONDS = 86400


def public_read(view_func) -> bool:
    """Whether `view_func` (a URL pattern's callback) is a DRF view whose `GET` anyone may
    call."""
    view_class = getattr(view_func, "cls", None)
    if view_class is None or not hasattr(view_class, "get"):
        return False
    return anonymous_may_call(view_class(**view_func.initkwargs), "GET")


@functools.lru_cache(maxsize=64)
def _vary(given: str | None) -> str:
    """A `Vary` of the server's own (a view's, a middleware's) with the credentials
    added, as Django adds them: kept, as parsing it again took half the middleware's
    time."""
    response = HttpResponse()
    if given is not None:
        response["Vary"] = given
    patch_vary_headers(response, CREDENTIALS)
    return response["Vary"]


def _preflight() -> HttpResponse:
    response = HttpResponse(status=204)
    del response["Content-Type"]
    response["Access-Control-Allow-Origin"] = "*"
    response["Access-Control-Allow-Methods"] = ", ".join(sorted(READS))
    response["Access-Control-Allow-Headers"] = ALLOWED_REQUEST_HEADERS
    response["Access-Control-Max-Age"] = str(PREFLIGHT_MAX_AGE_SECONDS)
    return response


class PublicReadsCorsMiddleware:
    """The CORS headers of public reads, and their preflights. A view is weighed once, on
    its first request: a dictionary lookup per request after that."""

    def __init__(self, get_response):
        self.get_response = get_response
        # By URL pattern callback: as many as the URL conf has views.
        self._public: dict = {}

    def _is_public(self, view_func) -> bool:
        public = self._public.get(view_func)
        if public is None:
            public = self._public[view_func] = public_read(view_func)
        return public

    def process_view(self, request, view_func, view_args, view_kwargs):
        if (
            request.method == "OPTIONS"
            and request.META.get("HTTP_ACCESS_CONTROL_REQUEST_METHOD") in READS
            and "HTTP_ORIGIN" in request.META
            and self._is_public(view_func)
        ):
            return _preflight()
        return None

    def __call__(self, request):
        response = self.get_response(request)
        if request.method not in READS:
            return response
        match = request.resolver_match
        if match is None or not self._is_public(match.func):
            return response
        # An empty `Cookie` (Django's test client sends one) carries no caller.
        if not any(request.META.get(name) for name in _CREDENTIALS_META):
            response["Access-Control-Allow-Origin"] = "*"
            response["Access-Control-Expose-Headers"] = EXPOSED
        response["Vary"] = _vary(response.get("Vary"))
        return response
