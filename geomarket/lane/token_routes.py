"""What the fast routes for callers that DRF authenticates by their API token alone share:
who the caller is, and the headers of Django's answers to such callers.

A route answers only a caller DRF would authenticate by the `Authorization: Token` header
and nothing else: no cookie (no session to weigh, no CSRF to check), one well-formed
header. Its statement checks the key itself, and the route hands the request to Django
whenever the statement finds no one, so that Django words the 401 or 403.
"""

import functools
import re

from geomarket.api.authentication import token_key
from geomarket.lane import front_cache
from geomarket.lane.learned_headers import Learned, LearnedHeaders

# DRF's keys are 40 hex digits; anything else is looked up by Django.
_TOKEN_KEY = re.compile(r"[0-9a-f]{40}")
# A routed `POST`'s body is small (a ping is about 100 bytes); larger ones go to Django.
MAX_BODY_BYTES = 2048
# DRF's JSON renderer reads `Accept`'s `indent` parameter; routes render compact JSON, so
# they answer only these.
_PLAIN_ACCEPT = frozenset((b"", b"*/*", b"application/json"))


def token_caller(scope) -> tuple[tuple[bytes, ...], str] | None:
    """(`request_identity`, token key) of a `GET` without a body, or a `POST` of a small
    JSON body, that DRF authenticates by its token alone; None for any other request."""
    if scope["method"] == "GET":
        headers = front_cache.plain_get_headers(scope)
    else:
        headers = front_cache.plain_json_post_headers(scope, max_length=MAX_BODY_BYTES)
    if headers is None or b"cookie" in headers:
        return None
    key = _routed_key(headers.get(b"authorization", b""))
    if key is None:
        return None
    return front_cache.request_identity(scope, headers), key


@functools.lru_cache(maxsize=4096)
def _routed_key(authorization: bytes) -> str | None:
    # The same few headers come again and again (a courier pings every few seconds).
    key = token_key(authorization)
    return key if key is not None and _TOKEN_KEY.fullmatch(key) else None


# The headers of Django's JSON 200 answers to token callers, by (path, request identity).
learned = LearnedHeaders()


def learn_headers(route, scope, response) -> None:
    """Remember the headers of Django's JSON answer to a token caller."""
    if response.status_code != 200 or response.streaming:
        return
    if response.cookies or response.get("Content-Type") != "application/json":
        return
    caller = route.auth(scope)
    if caller is not None:
        learned.learn((scope["path"], caller[0]), response)


def learned_caller(route, scope) -> tuple[str, Learned] | None:
    """(token key, Django's headers) for a token caller the route may answer: one like it
    (same path, scheme, host, forwarded scheme, `Accept`) had a JSON 200 from Django in
    this process. None for a request only Django may answer."""
    caller = route.auth(scope)
    if caller is None or caller[0][-1] not in _PLAIN_ACCEPT:
        return None
    headers = learned.get((scope["path"], caller[0]))
    return None if headers is None else (caller[1], headers)
