"""Versioned caching of whole API answers in Redis.

Every cached answer is filed under the current version of each namespace it depends on.
A write bumps the versions of the namespaces it changes once its transaction commits,
so from then on every reader builds keys that no stale answer is filed under. Old
entries are never deleted; they expire with their TTL.

Redis is an accelerator, never a dependency: when it fails, answers come from the
database, the fault is logged, and a short circuit breaker stops each request from
paying a connection timeout. A process that saw Redis fail bumps every namespace when
Redis comes back, because a write it made meanwhile could not bump anything.
"""

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from enum import StrEnum

from django.conf import settings
from django.db import transaction
from django_redis import get_redis_connection
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)


class Namespace(StrEnum):
    CATALOG = "catalog"  # products, categories, stock
    MERCHANTS = "merchants"  # merchants and their delivery zones


class _Breaker:
    """Skip Redis for `cooldown` seconds after a failure; remember to invalidate after."""

    def __init__(self, cooldown: float = 5.0):
        self.cooldown = cooldown
        self.open_until = 0.0
        self.needs_full_bump = False
        self.last_logged = 0.0
        self.lock = threading.Lock()

    def allows(self) -> bool:
        return time.monotonic() >= self.open_until

    def cooldown_seconds(self) -> float:
        return getattr(settings, "CACHE_BREAKER_SECONDS", self.cooldown)

    def trip(self, exc: Exception, action: str) -> None:
        now = time.monotonic()
        with self.lock:
            self.open_until = now + self.cooldown_seconds()
            self.needs_full_bump = True
            if now - self.last_logged > self.cooldown_seconds():
                self.last_logged = now
                logger.warning(
                    "redis unavailable during %s, serving from the database: %r", action, exc
                )


_breaker = _Breaker()


def _redis():
    return get_redis_connection("default")


def _prefix() -> str:
    return f"{settings.CACHES['default'].get('KEY_PREFIX', '')}:answers"


def _version_key(namespace: str) -> str:
    return f"{_prefix()}:version:{namespace}"


def _recover(client) -> None:
    """After an outage, invalidate everything once: writes made meanwhile did not bump."""
    if _breaker.needs_full_bump:
        _incr_versions(client, list(Namespace))
        _breaker.needs_full_bump = False
        logger.info("redis is back; cached answers invalidated")


# Versions outlive every cached answer by far; expiring them only keeps Redis tidy, and
# a version that restarts from zero can never meet an answer filed under it before.
VERSION_TTL_SECONDS = 7 * 24 * 3600


def _incr_versions(client, namespaces) -> None:
    pipe = client.pipeline(transaction=False)
    for namespace in namespaces:
        pipe.incr(_version_key(namespace))
        pipe.expire(_version_key(namespace), VERSION_TTL_SECONDS)
    pipe.execute()


def _bump_now(namespaces: tuple[str, ...]) -> None:
    if not _breaker.allows():
        _breaker.needs_full_bump = True
        return
    try:
        client = _redis()
        _recover(client)
        _incr_versions(client, namespaces)
    except RedisError as exc:
        _breaker.trip(exc, "version bump")


def versions_bump(*namespaces: Namespace) -> None:
    """Make cached answers of these namespaces unreachable once the transaction commits."""
    names = tuple(sorted({str(namespace) for namespace in namespaces}))
    transaction.on_commit(lambda: _bump_now(names))


def _answer_key(name: str, versions: Iterable, params: dict) -> str:
    canonical = json.dumps(params, sort_keys=True, separators=(",", ":"), default=str)
    digest = hashlib.blake2b(canonical.encode(), digest_size=16).hexdigest()
    version_part = ".".join(str(int(v or 0)) for v in versions)
    return f"{_prefix()}:{name}:{version_part}:{digest}"


def cached_answer(
    *,
    name: str,
    namespaces: tuple[Namespace, ...],
    params: dict,
    compute: Callable[[], bytes],
    timeout: int | None = None,
) -> tuple[bytes, bool]:
    """The answer's bytes and whether they came from the cache."""
    if not _breaker.allows():
        return compute(), False
    try:
        client = _redis()
        _recover(client)
        versions = client.mget([_version_key(namespace) for namespace in namespaces])
        key = _answer_key(name, versions, params)
        cached = client.get(key)
    except RedisError as exc:
        _breaker.trip(exc, "cache read")
        return compute(), False
    if cached is not None:
        return cached, True
    body = compute()
    try:
        client.set(key, body, ex=timeout or settings.CACHE_TIMEOUT_SECONDS)
    except RedisError as exc:
        _breaker.trip(exc, "cache write")
    return body, False
