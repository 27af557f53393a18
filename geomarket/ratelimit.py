"""A fixed-rate limiter shared by every web process, atomic in Redis.

GCRA (the generic cell rate algorithm) in one Lua script: each key stores only the
"theoretical arrival time" of the next request, so a check is one round trip and
concurrent processes can never both take the last slot. A burst of `limit` requests is
allowed per `period`, refilling smoothly.

When Redis is unavailable the limiter fails open and logs it: limiting is protection,
not a reason to refuse a customer's search.
"""

import contextlib
import functools
import hashlib
import ipaddress
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.http import HttpResponse
from django_redis import get_redis_connection
from redis.exceptions import NoScriptError, RedisError
from rest_framework.exceptions import APIException, Throttled

from geomarket.api.responses import json_response
from geomarket.env import network

logger = logging.getLogger(__name__)

# KEYS: the buckets; ARGV: now (ms), then per bucket its emission interval and burst
# tolerance (ms). Returns per bucket {allowed, remaining, reset_after_ms, retry_after_ms}.
# A request is let through only when every bucket has room, and then takes a slot of
# each; a refused request takes nothing, so one exhausted limit never drains another.
GCRA_SCRIPT = """
local now = tonumber(ARGV[1])
local results = {}
local new_tats = {}
local refused = false
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[2 * i])
  local tolerance = tonumber(ARGV[2 * i + 1])
  local tat = tonumber(redis.call('GET', key) or now)
  if tat < now then tat = now end
  local new_tat = tat + interval
  local allow_at = new_tat - tolerance
  if allow_at > now then
    refused = true
    results[i] = {0, 0, tat - now, allow_at - now}
  else
    new_tats[i] = new_tat
    results[i] = {1, math.floor((tolerance - (new_tat - now)) / interval), new_tat - now, 0}
  end
end
if not refused then
  for i, key in ipairs(KEYS) do
    redis.call('SET', key, new_tats[i], 'PX', math.max(1, math.ceil(new_tats[i] - now)))
  end
end
return results
"""


# The headers that tell a client its budget: the limit, the requests left now, the seconds until
# the whole budget is back.
RATE_LIMIT_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")


@dataclass(frozen=True)
class RateLimitResult:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int
    retry_after_seconds: int

    def headers(self) -> dict[str, str]:
        values = (self.limit, self.remaining, self.reset_seconds)
        return {name: str(value) for name, value in zip(RATE_LIMIT_HEADERS, values, strict=True)}


class RateLimiter:
    def __init__(self, *, scope: str, limit: int, period_seconds: int = 60):
        self.scope = scope
        self.limit = limit
        self.period_ms = period_seconds * 1000

    def key(self, identity: str) -> str:
        prefix = settings.CACHES["default"].get("KEY_PREFIX", "")
        return f"{prefix}:ratelimit:{self.scope}:{identity}"

    def hit(self, identity: str) -> RateLimitResult:
        return hit_all([(self, identity)])[0]


def hit_all(checks: list[tuple[RateLimiter, str]]) -> list[RateLimitResult]:
    """Take a slot of every (limiter, identity) bucket at once, in one round trip."""
    keys, args = _script_call(checks)
    try:
        script = get_redis_connection("default").register_script(GCRA_SCRIPT)
        raw = script(keys=keys, args=args)
    except RedisError as exc:
        return _failing_open(checks, exc)
    return _results(checks, raw)


def hit_all_sent(checks: list[tuple[RateLimiter, str]]) -> Callable[[], list[RateLimitResult]]:
    """`hit_all`, its command sent now and its reply read by the function returned, so
    that the caller works while Redis answers (the slots are taken when Redis runs it,
    as with `hit_all`). The function must be called once, to give the connection back.

    A command that cannot be sent is left to `hit_all` (with the client's retries); a
    reply that cannot be read fails open, as `hit_all` does.
    """
    keys, args = _script_call(checks)
    pool = get_redis_connection("default").connection_pool
    try:
        connection = pool.get_connection()
    except RedisError:
        return functools.partial(hit_all, checks)
    try:
        connection.send_command("EVALSHA", _GCRA_SHA, len(keys), *keys, *args)
    except RedisError:
        connection.disconnect()
        pool.release(connection)
        return functools.partial(hit_all, checks)

    def reply() -> list[RateLimitResult]:
        try:
            raw = connection.read_response()
        except NoScriptError:
            # The server lost its scripts (a restart): nothing ran; `hit_all` loads it.
            return hit_all(checks)
        except RedisError as exc:
            connection.disconnect()
            return _failing_open(checks, exc)
        finally:
            pool.release(connection)
        return _results(checks, raw)

    return reply


_GCRA_SHA = hashlib.sha1(GCRA_SCRIPT.encode()).hexdigest()  # noqa: S324 - Redis names scripts so


def _script_call(checks: list[tuple[RateLimiter, str]]) -> tuple[list[str], list[float]]:
    """The script's keys and arguments for `checks`, at the time now."""
    args: list[float] = [int(time.time() * 1000)]
    for limiter, _ in checks:
        args += [limiter.period_ms / limiter.limit, limiter.period_ms]
    return [limiter.key(identity) for limiter, identity in checks], args


def _failing_open(checks, exc: Exception) -> list[RateLimitResult]:
    scopes = ", ".join(limiter.scope for limiter, _ in checks)
    logger.warning("rate limiter %s failing open, redis unavailable: %r", scopes, exc)
    return [RateLimitResult(True, limiter.limit, limiter.limit, 0, 0) for limiter, _ in checks]


def _results(checks, raw) -> list[RateLimitResult]:
    return [
        RateLimitResult(
            allowed=bool(allowed),
            limit=limiter.limit,
            remaining=max(0, int(remaining)),
            reset_seconds=math.ceil(float(reset_ms) / 1000),
            retry_after_seconds=max(1, math.ceil(float(retry_ms) / 1000)) if not allowed else 0,
        )
        for (limiter, _), (allowed, remaining, reset_ms, retry_ms) in zip(checks, raw, strict=True)
    ]


def client_identity(request) -> str:
    """The user when authenticated, else the client IP.

    `X-Forwarded-For` is believed only when the direct peer is a proxy named in
    `TRUSTED_PROXIES`; then the client is the right-most address not itself a proxy.
    """
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return f"user:{user.pk}"
    remote = request.META.get("REMOTE_ADDR", "")
    trusted = _proxies(tuple(settings.TRUSTED_PROXIES))
    if _is_proxy(remote, trusted):
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        for hop in reversed(hops):
            if not _is_proxy(hop, trusted):
                return f"ip:{hop}"
    return f"ip:{remote}"


@functools.lru_cache(maxsize=4)
def _proxies(entries: tuple[str, ...]) -> tuple:
    return tuple(network(entry) for entry in entries)


def _is_proxy(address: str, proxies: tuple) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in proxy for proxy in proxies)


def client_ip(request) -> str:
    identity = client_identity(_Anonymous(request))
    return identity.removeprefix("ip:")


class _Anonymous:
    """A view of the request without its user, to get the client's address alone."""

    def __init__(self, request):
        self.META = request.META
        self.user = None


# Every door that checks a password (the API's token, the console's and the admin's
# sign-in) spends from this one budget per client IP: separate budgets would multiply an
# attacker's guesses by the number of doors.
PASSWORD_GUESSES = ("token", "TOKEN_RATE_LIMIT_PER_MINUTE", "ip")


def limit_checks(request, rate_limits) -> list[tuple["RateLimiter", str]]:
    """The (limiter, identity) of each of `rate_limits` ((scope, setting, keyed_by), as
    `RateLimitedMixin.rate_limits`) for `request`; "user" limits skip anonymous callers."""
    checks = []
    for scope, setting, keyed_by in rate_limits:
        if keyed_by == "user":
            if not request.user.is_authenticated:
                continue
            identity = f"user:{request.user.pk}"
        elif keyed_by == "ip":
            identity = f"ip:{client_ip(request)}"
        else:
            identity = client_identity(request)
        limiter = RateLimiter(scope=f"{scope}:{keyed_by}", limit=getattr(settings, setting))
        checks.append((limiter, identity))
    return checks


def login_rate_limited(view):
    """A session sign-in view whose POSTs spend from `PASSWORD_GUESSES`; over the limit
    it answers 429 as the API does, before any password is checked. Showing the form is
    not limited."""

    @functools.wraps(view)
    def limited(request, *args, **kwargs):
        if request.method == "POST":
            (result,) = hit_all(limit_checks(request, (PASSWORD_GUESSES,)))
            if not result.allowed:
                return _throttled_response(result)
        return view(request, *args, **kwargs)

    return limited


def _throttled_response(result: RateLimitResult) -> HttpResponse:
    """The API's 429 (`geomarket.api.exceptions`), for a view outside DRF."""
    retry_after = result.retry_after_seconds
    return json_response(
        {"detail": "Request was throttled.", "retry_after": retry_after},
        status=429,
        headers={"Retry-After": str(retry_after), **result.headers()},
    )


class RateLimitedMixin:
    """Per-view limits for DRF views: `rate_limits` lists (scope, setting, keyed_by).

    `keyed_by` is "client" (the user when authenticated, else the IP), "user" (skipped
    for anonymous callers) or "ip". Every response to a limited method carries the headers
    of the tightest limit; the first exhausted limit answers 429 with `retry_after`. All of
    a view's limits are checked in one Redis round trip. A `HEAD` or `OPTIONS` is a request
    like any other: it counts, and carries the headers. So does a request refused before
    its handler runs (a token that is not valid, an `Accept` nothing renders), whose
    refusal stands even over the limit: who is asking is settled first.

    A view with `rate_limit_deferred` has the check sent before its handler runs and must
    call `rate_limit_admit()` (which raises the 429) before it writes or answers: the
    handler reads and checks its body meanwhile, while Redis answers. Over the limit, a
    handler that never admits (DRF's own: `OPTIONS`, a method not allowed) has its answer
    replaced by the 429.
    """

    rate_limits: tuple[tuple[str, str, str], ...] = ()
    rate_limited_methods: tuple[str, ...] = (
        "GET",
        "HEAD",
        "OPTIONS",
        "POST",
        "PUT",
        "PATCH",
        "DELETE",
    )
    rate_limit_deferred = False

    def initial(self, request, *args, **kwargs):
        self.rate_limit = None
        self._rate_limit_reply = None
        try:
            super().initial(request, *args, **kwargs)
        except Exception:
            # A refusal from content negotiation comes before authentication: the caller
            # is then read here, and one whose token fails is anonymous.
            with contextlib.suppress(APIException):
                request.user  # noqa: B018 - read for its side effect
            with contextlib.suppress(Throttled):
                self._rate_limit_check(request, deferred=False)
            raise
        self._rate_limit_check(request, deferred=self.rate_limit_deferred)

    def _rate_limit_check(self, request, *, deferred: bool) -> None:
        if request.method not in self.rate_limited_methods:
            return
        checks = limit_checks(request, self.rate_limits)
        if not checks:
            return
        if deferred:
            self._rate_limit_reply = hit_all_sent(checks)
        else:
            self._rate_limited(hit_all(checks))

    def rate_limit_admit(self) -> None:
        """The deferred check's verdict: a 429 when over a limit."""
        reply, self._rate_limit_reply = getattr(self, "_rate_limit_reply", None), None
        if reply is not None:
            self._rate_limited(reply())

    def _rate_limited(self, results: list[RateLimitResult]) -> None:
        refused = [result for result in results if not result.allowed]
        if refused:
            self.rate_limit = refused[0]
            raise Throttled(wait=refused[0].retry_after_seconds)
        self.rate_limit = min(results, key=lambda result: result.remaining)

    def finalize_response(self, request, response, *args, **kwargs):
        if getattr(self, "_rate_limit_reply", None) is not None:
            # A handler that did not admit did not write either.
            try:
                self.rate_limit_admit()
            except Throttled as exc:
                response = self.handle_exception(exc)
        response = super().finalize_response(request, response, *args, **kwargs)
        if getattr(self, "rate_limit", None) is not None:
            for header, value in self.rate_limit.headers().items():
                response[header] = value
        return response
