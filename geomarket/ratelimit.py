"""A fixed-rate limiter shared by every web process, atomic in Redis.

GCRA (the generic cell rate algorithm) in one Lua script: each key stores only the
"theoretical arrival time" of the next request, so a check is one round trip and
concurrent processes can never both take the last slot. A burst of `limit` requests is
allowed per `period`, refilling smoothly.

When Redis is unavailable the limiter fails open and logs it: limiting is protection,
not a reason to refuse a customer's search.
"""

import logging
import math
import time
from dataclasses import dataclass

from django.conf import settings
from django_redis import get_redis_connection
from redis.exceptions import RedisError
from rest_framework.exceptions import Throttled

logger = logging.getLogger(__name__)

# KEYS[1] the bucket; ARGV: now (ms), emission interval (ms), burst tolerance (ms).
# Returns {allowed, remaining, reset_after_ms, retry_after_ms}.
GCRA_SCRIPT = """
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local tolerance = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - tolerance
if allow_at > now then
  local remaining = 0
  return {0, remaining, tat - now, allow_at - now}
end
redis.call('SET', KEYS[1], new_tat, 'PX', math.max(1, math.ceil(new_tat - now)))
local remaining = math.floor((tolerance - (new_tat - now)) / interval)
return {1, remaining, new_tat - now, 0}
"""


@dataclass(frozen=True)
class RateLimitResult:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int
    retry_after_seconds: int

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_seconds),
        }


class RateLimiter:
    def __init__(self, *, scope: str, limit: int, period_seconds: int = 60):
        self.scope = scope
        self.limit = limit
        self.period_ms = period_seconds * 1000

    def hit(self, identity: str) -> RateLimitResult:
        interval = self.period_ms / self.limit
        key = (
            f"{settings.CACHES['default'].get('KEY_PREFIX', '')}:ratelimit:{self.scope}:{identity}"
        )
        try:
            client = get_redis_connection("default")
            script = client.register_script(GCRA_SCRIPT)
            allowed, remaining, reset_ms, retry_ms = script(
                keys=[key], args=[int(time.time() * 1000), interval, self.period_ms]
            )
        except RedisError as exc:
            logger.warning("rate limiter %s failing open, redis unavailable: %r", self.scope, exc)
            return RateLimitResult(True, self.limit, self.limit, 0, 0)
        return RateLimitResult(
            allowed=bool(allowed),
            limit=self.limit,
            remaining=max(0, int(remaining)),
            reset_seconds=math.ceil(float(reset_ms) / 1000),
            retry_after_seconds=max(1, math.ceil(float(retry_ms) / 1000)) if not allowed else 0,
        )


def client_identity(request) -> str:
    """The user when authenticated, else the client IP.

    `X-Forwarded-For` is believed only when the direct peer is a proxy named in
    `TRUSTED_PROXIES`; then the client is the right-most address not itself a proxy.
    """
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return f"user:{user.pk}"
    remote = request.META.get("REMOTE_ADDR", "")
    trusted = settings.TRUSTED_PROXIES
    if remote in trusted:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        for hop in reversed(hops):
            if hop not in trusted:
                return f"ip:{hop}"
    return f"ip:{remote}"


def client_ip(request) -> str:
    identity = client_identity(_Anonymous(request))
    return identity.removeprefix("ip:")


class _Anonymous:
    """A view of the request without its user, to get the client's address alone."""

    def __init__(self, request):
        self.META = request.META
        self.user = None


class RateLimitedMixin:
    """Per-view limits for DRF views: `rate_limits` lists (scope, setting, keyed_by).

    `keyed_by` is "client" (the user when authenticated, else the IP), "user" (skipped
    for anonymous callers) or "ip". Every response carries the headers of the tightest
    limit; the first exhausted limit answers 429 with `retry_after`.
    """

    rate_limits: tuple[tuple[str, str, str], ...] = ()
    rate_limited_methods: tuple[str, ...] = ("GET", "POST", "PUT", "PATCH", "DELETE")

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        self.rate_limit = None
        if request.method not in self.rate_limited_methods:
            return
        for scope, setting, keyed_by in self.rate_limits:
            if keyed_by == "user":
                if not request.user.is_authenticated:
                    continue
                identity = f"user:{request.user.pk}"
            elif keyed_by == "ip":
                identity = f"ip:{client_ip(request)}"
            else:
                identity = client_identity(request)
            limiter = RateLimiter(scope=f"{scope}:{keyed_by}", limit=getattr(settings, setting))
            result = limiter.hit(identity)
            if self.rate_limit is None or result.remaining < self.rate_limit.remaining:
                self.rate_limit = result
            if not result.allowed:
                self.rate_limit = result
                raise Throttled(wait=result.retry_after_seconds)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if getattr(self, "rate_limit", None) is not None:
            for header, value in self.rate_limit.headers().items():
                response[header] = value
        return response
