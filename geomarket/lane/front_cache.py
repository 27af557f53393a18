"""Cache hits served in front of Django, from the ASGI event loop.

A cached search answer served through Django still pays for the whole stack: a thread
hop, the middleware chain, DRF's dispatch and parameter validation, about 2 to 3 ms, while
the answer itself is one Redis read. For the public search endpoints (`FRONT_CACHE_PATHS`)
the server therefore files a copy of every successful answer, with its status and
headers, under the exact request it answered: host, scheme, `Accept` and the raw path
and query. The next identical request reads it in one round trip (`MGET` of the
namespace versions and the entry) and is answered without entering Django.

Staleness follows the answer cache's rule: an entry records the namespace versions that
were read before its answer was computed, and is served only while they are still the
current versions, so a committed write that bumped a namespace makes it unreachable.

Only requests that no part of Django would answer differently are eligible: anonymous
ones (no `Authorization`, no `Cookie`; an invalid token must still get its 401), `GET`
without a body, on a listed path. Rate-limited endpoints (suggest) are not listed: their
limiter must see every request. Entries exist only for requests Django answered with 200,
so host validation and the HTTPS redirect have already passed for that exact host and
scheme. When Redis fails, the request goes on to Django, whose answer cache falls back to
the database; the shared circuit breaker keeps both from waiting on a dead Redis.
"""

import asyncio
import functools
import hashlib
import json
import time
from typing import NamedTuple
from urllib.parse import parse_qsl

from django.conf import settings
from redis.exceptions import RedisError

from geomarket import answer_cache
from geomarket.db import replicas
from geomarket.lane import near_cache
from geomarket.lane.redis_async import RedisPipe

# Headers that belong to one response, not to the answer: recomputed or replaced.
_PER_RESPONSE_HEADERS = {"content-length", "x-cache"}


def plain_get_headers(scope) -> dict[bytes, bytes] | None:
    """The headers of a `GET` without a body, none of them repeated; None otherwise."""
    if scope["method"] != "GET":
        return None
    headers = dict(scope["headers"])
    if len(headers) != len(scope["headers"]):
        # A repeated header reaches Django joined, not as the last copy read here.
        return None
    if b"transfer-encoding" in headers or headers.get(b"content-length", b"0") != b"0":
        return None
    return headers


def plain_json_post_headers(scope, *, max_length: int) -> dict[bytes, bytes] | None:
    """The headers of a `POST` of a JSON body of at most `max_length` bytes, declared by
    its `Content-Length`, none of them repeated; None otherwise."""
    if scope["method"] != "POST":
        return None
    headers = dict(scope["headers"])
    if len(headers) != len(scope["headers"]) or b"transfer-encoding" in headers:
        return None
    if headers.get(b"content-type") != b"application/json":
        return None
    length = headers.get(b"content-length", b"")
    if not length.isdigit() or int(length) > max_length:
        return None
    return headers


def query_pairs(raw: bytes, *, max_fields: int) -> dict[str, str] | None:
    """The query's parameters as Django's ASGI request reads them, or None when it has
    more than `max_fields`, a repeated name (Django would read the last), or anything
    that does not decode."""
    try:
        pairs = parse_qsl(raw.decode(), keep_blank_values=True, max_num_fields=max_fields)
    except (UnicodeDecodeError, ValueError):
        return None
    given: dict[str, str] = {}
    for name, value in pairs:
        if name in given or "\ufffd" in name or "\ufffd" in value:
            return None
        given[name] = value
    return given


def request_identity(scope, headers: dict[bytes, bytes]) -> tuple[bytes, ...]:
    """Besides the caller, path and query, what could make Django answer a request
    differently: scheme, host, forwarded scheme and `Accept`."""
    return (
        scope.get("scheme", "http").encode(),
        headers.get(b"host", b""),
        headers.get(b"x-forwarded-proto", b""),
        headers.get(b"accept", b""),
    )


def anonymous_identity(scope) -> tuple[bytes, ...] | None:
    """The `request_identity` of an anonymous `GET` without a body; None for any other request,
    which only Django may answer."""
    headers = plain_get_headers(scope)
    if headers is None or b"authorization" in headers or b"cookie" in headers:
        return None
    return request_identity(scope, headers)


def front_key(scope) -> str | None:
    """The entry's key for this request, or None when the request is not eligible."""
    if scope["path"] not in settings.FRONT_CACHE_PATHS:
        return None
    identity = anonymous_identity(scope)
    if identity is None:
        return None
    material = b"\n".join(
        (
            *identity,
            scope.get("raw_path") or scope["path"].encode(),
            scope.get("query_string", b""),
        )
    )
    digest = hashlib.blake2b(material, digest_size=16).hexdigest()
    return f"{answer_cache.answer_prefix()}:front:{digest}"


def _pack(
    versions: dict[str, str],
    status: int,
    headers: list[tuple[str, str]],
    body: bytes,
    *,
    expires_at: float,
):
    # The expiry lets a process's near cache keep the entry no longer than Redis does.
    meta = {"versions": versions, "status": status, "headers": headers, "expires": expires_at}
    return json.dumps(meta, separators=(",", ":")).encode() + b"\n" + body


def answer_headers(response) -> list[tuple[str, str]]:
    """The headers of Django's response that belong to the answer, not to this response."""
    return [
        (name, value)
        for name, value in response.items()
        if name.lower() not in _PER_RESPONSE_HEADERS
    ]


def store(scope, response) -> None:
    """File a copy of Django's answer to this request, when it is one to keep."""
    versions = getattr(response, "answer_versions", None)
    if not versions or response.status_code != 200 or response.streaming:
        return
    if response.cookies:
        # A cookie belongs to the one client it was set for, never to every later caller.
        return
    key = front_key(scope)
    if key is None or not answer_cache.breaker_allows():
        return
    now = time.time()
    expires_at = now + settings.CACHE_TIMEOUT_SECONDS
    # An answer that stops being true sooner (it shows whether shops are open) is kept
    # no longer than that.
    answer_expires_at = getattr(response, "answer_expires_at", None)
    if answer_expires_at is not None:
        expires_at = min(expires_at, answer_expires_at)
    keep_ms = int((expires_at - now) * 1000)
    if keep_ms <= 0:
        return
    entry = _pack(
        versions,
        response.status_code,
        answer_headers(response),
        response.content,
        expires_at=expires_at,
    )
    answer_cache.cache_write(key, entry, until=expires_at, action="front cache write")


async def store_answer(
    key: str,
    *,
    versions: dict[str, str],
    headers: list[tuple[str, str]],
    wire_headers: list[tuple[bytes, bytes]],
    body: bytes,
    answer_expires_at: float | None = None,
) -> None:
    """File a 200 answer computed on the event loop under the key its lookup used, as
    `store` files Django's, kept no longer than `answer_expires_at` (Unix time) when
    given. `wire_headers` are `headers` encoded for ASGI."""
    if not answer_cache.breaker_allows():
        return
    # Whole seconds, so the entry's metadata is encoded once a second, not per answer; the
    # entry is kept up to that second, a little less than the cache's timeout.
    now = time.time()
    expires_at = float(int(now) + settings.CACHE_TIMEOUT_SECONDS)
    if answer_expires_at is not None and answer_expires_at < expires_at:
        expires_at = float(int(answer_expires_at))
    keep_ms = int((expires_at - now) * 1000)
    if keep_ms <= 0:
        return
    entry = _packed_meta(versions, headers, expires_at) + body
    try:
        await _clients.get().execute("SET", key, entry, "PX", keep_ms)
    except (RedisError, OSError, TimeoutError) as exc:
        answer_cache.breaker_trip(exc, "front cache write")
        return
    near = near_cache.copies.get()
    if near is not None:
        answer = (200, _hit_headers(wire_headers, body), body)
        near.keep(key, versions=versions, expires_at=expires_at, answer=answer)


_last_meta: tuple = (None, None, None, b"")


def _packed_meta(versions: dict[str, str], headers: list, expires_at: float) -> bytes:
    """`_pack`'s metadata line for a 200 answer, reused while nothing in it changes."""
    global _last_meta
    last_headers, last_versions, last_expiry, packed = _last_meta
    if headers is not last_headers or versions != last_versions or expires_at != last_expiry:
        packed = _pack(versions, 200, headers, b"", expires_at=expires_at)
        _last_meta = (headers, dict(versions), expires_at, packed)
    return packed


class _Clients:
    """One Redis connection per event loop and Redis URL: a connection belongs to the loop
    that opened it."""

    def __init__(self):
        self._client = None
        self._owner = None

    def get(self):
        owner = (asyncio.get_running_loop(), settings.CACHES["default"]["LOCATION"])
        if self._owner != owner:
            options = settings.CACHES["default"].get("OPTIONS", {})
            self._client = RedisPipe(
                owner[1],
                timeout=options.get("SOCKET_TIMEOUT", 1),
                connect_timeout=options.get("SOCKET_CONNECT_TIMEOUT", 1),
            )
            self._owner = owner
        return self._client


_clients = _Clients()


def redis_client():
    """This event loop's connection to the cache's Redis, for other lane writes."""
    return _clients.get()


@functools.lru_cache(maxsize=16)
def _version_keys(prefix: str, lsns: bool) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Every namespace, and its version key under this prefix (the same for each request),
    then, with `lsns`, its LSN key."""
    namespaces = tuple(str(namespace) for namespace in answer_cache.Namespace)
    keys = tuple(answer_cache.version_key(name, prefix) for name in namespaces)
    if lsns:
        keys += tuple(answer_cache.lsn_key(name, prefix) for name in namespaces)
    return namespaces, keys


class Lookup(NamedTuple):
    # The entry's key; None when the request may not be answered from the cache.
    key: str | None
    # (status, headers, body) of a current entry, or None.
    answer: tuple[int, list[tuple[bytes, bytes]], bytes] | None
    # The namespace versions read, which an answer computed now may be filed under; None
    # when Redis was not asked or did not answer.
    versions: dict[str, str] | None
    # With read replicas: the WAL position a replica must have replayed to compute an
    # answer filed under `versions` (answer_cache.lsn_key), or None.
    min_lsn: int | None = None


_NOT_ASKED = Lookup(None, None, None)


async def lookup(scope) -> Lookup:
    """A current entry for this request, and the namespace versions current now."""
    key = front_key(scope)
    if key is None:
        return _NOT_ASKED
    if not answer_cache.breaker_allows():
        return Lookup(key, None, None)
    near = near_cache.copies.get()
    if near is not None:
        if (answer := await near.answer(key)) is not None:
            return Lookup(key, answer, near.versions)
        generation = near.generation
    lsns = replicas.configured()
    namespaces, version_keys = _version_keys(answer_cache.answer_prefix(), lsns)
    try:
        *raw_versions, entry = await _clients.get().execute("MGET", *version_keys, key)
    except (RedisError, OSError, TimeoutError) as exc:
        answer_cache.breaker_trip(exc, "front cache read")
        return Lookup(key, None, None)
    current = {
        namespace: answer_cache.version_value(raw)
        for namespace, raw in zip(namespaces, raw_versions, strict=False)
    }
    min_lsn = answer_cache.replayed_needed(raw_versions[len(namespaces) :]) if lsns else None
    if near is not None:
        near.keep_versions(current, generation=generation)
    if entry is None:
        return Lookup(key, None, current, min_lsn)
    meta_line, _, body = entry.partition(b"\n")
    meta = json.loads(meta_line)
    if any(current[namespace] != version for namespace, version in meta["versions"].items()):
        return Lookup(key, None, current, min_lsn)
    answer = (meta["status"], _hit_headers(encode_headers(meta["headers"]), body), body)
    if near is not None and "expires" in meta:
        near.keep(key, versions=meta["versions"], expires_at=meta["expires"], answer=answer)
    return Lookup(key, answer, current)


def encode_headers(headers: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    """Answer headers as ASGI sends them."""
    return [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers]


def _hit_headers(wire_headers: list[tuple[bytes, bytes]], body: bytes):
    """An entry's encoded headers as a hit sends them."""
    return [*wire_headers, (b"x-cache", b"HIT"), (b"content-length", str(len(body)).encode())]
