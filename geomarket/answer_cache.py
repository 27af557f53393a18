"""Versioned caching of whole API answers in Redis.

Every cached answer records the version of each namespace it depends on, read before it
was computed, and is served only while those are still the current versions. A write
bumps the versions of the namespaces it changes once its transaction commits, so from
then on no stale answer is served. An entry is kept under its request alone, so a lookup
reads the versions and the entry in one round trip; a newer answer replaces it, and
entries expire with their TTL. The ASGI server writes a miss's entries once its answer
has been sent (`writes_held`), in one round trip.

Redis is an accelerator, never a dependency: when it fails, answers come from the
database, the fault is logged, and a short circuit breaker stops each request from
paying a connection timeout. A process that saw Redis fail bumps every namespace when
Redis comes back.

A write that cannot bump its namespaces (the breaker is open when it starts, or the bump
after commit fails) must not leave other processes, whose Redis may be fine, serving the
answers it made stale. It records the namespaces in the database (`PendingBump`): in its
own transaction when the breaker is already open, else right after the failed bump. Those
records are bumped, then deleted, by `pending_bumps_retry`: from a beat task every second,
and by each process when its Redis comes back.

With read replicas (geomarket/db/replicas.py), a bump also records how far the primary's
WAL had gone after the write committed (`lsn_key`, the highest recorded), set before the
version moves. An answer filed under a version is computed where that position has been
replayed: on the primary, or on a replica that has replayed it (`replicas.reads_at_least`),
never on one that has not yet seen the write the version stands for.
"""

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from enum import StrEnum
from typing import NamedTuple

from django.conf import settings
from django.db import DatabaseError, transaction
from django_redis import get_redis_connection
from redis.exceptions import RedisError

from geomarket.db import replicas

logger = logging.getLogger(__name__)


class Namespace(StrEnum):
    CATALOG = "catalog"  # products, categories, stock
    MERCHANTS = "merchants"  # merchants, their addresses, categories and delivery zones


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


def breaker_allows() -> bool:
    """Whether Redis may be used now, and holds no answer that an outage made stale."""
    return _breaker.allows() and not _breaker.needs_full_bump


def breaker_closed() -> bool:
    """Whether Redis may be tried now: it has not failed within the cooldown. For reads
    that an outage cannot have made stale, unlike cached answers (`breaker_allows`)."""
    return _breaker.allows()


def recovery_pending() -> bool:
    """Whether Redis may be tried again but first needs the invalidation `_recover` does,
    which only a request through `cached_answer` performs."""
    return _breaker.allows() and _breaker.needs_full_bump


def breaker_trip(exc: Exception, action: str) -> None:
    _breaker.trip(exc, action)


def _redis():
    return get_redis_connection("default")


def answer_prefix() -> str:
    return f"{settings.CACHES['default'].get('KEY_PREFIX', '')}:answers"


def version_key(namespace: str, prefix: str | None = None) -> str:
    return f"{answer_prefix() if prefix is None else prefix}:version:{namespace}"


def _recover(client) -> None:
    """After an outage, invalidate everything once: writes made meanwhile did not bump.
    The records of bumps left pending, by this process or any other, are done too."""
    if _breaker.needs_full_bump:
        _incr_versions(client, list(Namespace))
        _breaker.needs_full_bump = False
        logger.info("redis is back; cached answers invalidated")
        try:
            _pending_bump(client)
        except DatabaseError as exc:
            logger.warning("pending version bumps left to the retry task: %r", exc)


# Versions outlive every cached answer by far; expiring them only keeps Redis tidy.
VERSION_TTL_SECONDS = 7 * 24 * 3600

# KEYS: the version keys; ARGV: their TTL. Each moves on by one, or, missing, starts from
# Redis's clock in microseconds. A version lost while answers filed under it live (Redis
# restarted while a request that read the old versions was still filing its answer, a
# key deleted by hand) would otherwise restart from 0 and, a few writes later, reach the
# number such an answer was filed under, which would be served again; from the clock it
# starts past every number the lost one could have reached.
_VERSIONS_BUMP = """
for _, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 1 then
    redis.call('INCR', key)
  else
    local now = redis.call('TIME')
    redis.call('SET', key, now[1] .. string.rep('0', 6 - #now[2]) .. now[2])
  end
  redis.call('EXPIRE', key, ARGV[1])
end
"""


def lsn_key(namespace: str, prefix: str | None = None) -> str:
    """Where the primary's WAL position after the namespace's last bump is kept."""
    return f"{answer_prefix() if prefix is None else prefix}:lsn:{namespace}"


# KEYS: the LSN keys; ARGV: the position, the TTL. Each keeps the highest it was given.
_LSN_RAISE = """
for _, key in ipairs(KEYS) do
  if tonumber(redis.call('GET', key) or '-1') < tonumber(ARGV[1]) then
    redis.call('SET', key, ARGV[1], 'EX', ARGV[2])
  end
end
"""
# A bump whose position could not be read: no replica serves its version's answers.
_LSN_UNKNOWN = 2**62


def _bump_lsn() -> int:
    try:
        return replicas.primary_lsn()
    except DatabaseError as exc:
        logger.warning("primary WAL position unread; replicas skipped for the bump: %r", exc)
        return _LSN_UNKNOWN


def _incr_versions(client, namespaces) -> None:
    pipe = client.pipeline(transaction=False)
    if replicas.configured():
        # Before the versions move: a reader that sees a new version sees its position.
        keys = [lsn_key(namespace) for namespace in namespaces]
        pipe.eval(_LSN_RAISE, len(keys), *keys, _bump_lsn(), VERSION_TTL_SECONDS)
    keys = [version_key(namespace) for namespace in namespaces]
    pipe.eval(_VERSIONS_BUMP, len(keys), *keys, VERSION_TTL_SECONDS)
    pipe.execute()


def replayed_needed(raw_lsns) -> int | None:
    """The WAL position a replica must have replayed to compute an answer filed under the
    versions read with these `lsn_key` values."""
    return max((int(raw) for raw in raw_lsns if raw is not None), default=None)


def _pending_record(namespaces: tuple[str, ...]) -> None:
    # Imported here: this module is imported before Django's apps are loaded (asgi.py).
    from geomarket.cache.models import PendingBump

    PendingBump.objects.bulk_create([PendingBump(namespace=name) for name in namespaces])


def _pending_bump(client) -> int:
    """Bump the namespaces recorded as pending, then delete those records; how many.

    Only records read before the bump are deleted: one committed later belongs to a write
    that may have committed after the bump, and is left for the next run."""
    from geomarket.cache.models import PendingBump

    pending = list(PendingBump.objects.order_by("id").values_list("id", "namespace")[:1000])
    if not pending:
        return 0
    _incr_versions(client, sorted({namespace for _, namespace in pending}))
    PendingBump.objects.filter(id__in=[pk for pk, _ in pending]).delete()
    return len(pending)


def pending_bumps_retry() -> int:
    """Bump what committed writes could not while Redis was failing (see the module's
    docstring); the number of records done. This process's breaker is not consulted: a
    write elsewhere may have failed where this process's Redis did not."""
    try:
        return _pending_bump(_redis())
    except RedisError as exc:
        _breaker.trip(exc, "pending version bumps")
        return 0


def _bump_now(namespaces: tuple[str, ...], *, recorded: bool) -> None:
    if _breaker.allows():
        try:
            client = _redis()
            _recover(client)
            _incr_versions(client, namespaces)
            return
        except RedisError as exc:
            _breaker.trip(exc, "version bump")
    _breaker.needs_full_bump = True
    if recorded:
        return
    try:
        # Committed and not bumped: recorded now, in a transaction of its own.
        _pending_record(namespaces)
    except DatabaseError as exc:
        logger.error(
            "version bump of %s lost; answers may be stale until they expire: %r",
            ", ".join(namespaces),
            exc,
        )


def versions_bump(*namespaces: Namespace) -> None:
    """Make cached answers of these namespaces unreachable once the transaction commits;
    called inside the write's transaction.

    With the breaker open, the bump is recorded in the write's own transaction, so it is
    committed exactly when the write is; it is still tried after commit."""
    names = tuple(sorted({str(namespace) for namespace in namespaces}))
    # The client's next reads must see this write, on a replica too.
    replicas.wrote_shown()
    recorded = not _breaker.allows()
    if recorded:
        _pending_record(names)
    transaction.on_commit(lambda: _bump_now(names, recorded=recorded))


def version_value(raw) -> str:
    """A namespace's version as read from Redis; a missing one is version 0."""
    return str(int(raw or 0))


def _answer_key(name: str, params: dict) -> str:
    canonical = json.dumps(params, sort_keys=True, separators=(",", ":"), default=str)
    digest = hashlib.blake2b(canonical.encode(), digest_size=16).hexdigest()
    return f"{answer_prefix()}:{name}:{digest}"


def _versions_line(versions: Iterable[str]) -> bytes:
    """What an entry starts with: the versions its answer was computed under."""
    return ".".join(versions).encode() + b"\n"


class Answer(NamedTuple):
    body: bytes
    hit: bool
    # The namespace versions read before the answer was computed, or None when Redis was
    # not used: what a copy of this answer may be filed under elsewhere (the front cache).
    versions: dict[str, str] | None
    # When the answer may stop being true (Unix time), or None for only the cache's own
    # TTL: what a copy of it must not outlive.
    expires_at: float | None = None


class Expiring(NamedTuple):
    """What `compute` returns for an answer that stops being true at `expires_at` (Unix
    time) with no write to bump a namespace: one showing what the clock decides, such as
    whether a shop is open. None: no such instant."""

    body: bytes
    expires_at: float | None


def _computed(compute: Callable[[], bytes | Expiring]) -> Expiring:
    result = compute()
    return result if isinstance(result, Expiring) else Expiring(result, None)


def uncached_answer(compute: Callable[[], bytes | Expiring]) -> Answer:
    """An answer computed afresh and filed nowhere: for one that depends on the clock
    in ways no expiry can bound (which merchants are open now)."""
    return Answer(_computed(compute).body, False, None)


def cached_answer(
    *,
    name: str,
    namespaces: tuple[Namespace, ...],
    params: dict,
    compute: Callable[[], bytes | Expiring],
    timeout: int | None = None,
) -> Answer:
    """The answer's bytes, whether they came from the cache, and the versions used. An
    answer `compute` says expires is kept no longer than that."""
    if not _breaker.allows():
        return Answer(_computed(compute).body, False, None)
    try:
        client = _redis()
        _recover(client)
        keys = [version_key(namespace) for namespace in namespaces]
        with_lsns = replicas.configured()
        if with_lsns:
            keys += [lsn_key(namespace) for namespace in namespaces]
        key = _answer_key(name, params)
        pipe = client.pipeline(transaction=False)
        pipe.mget([*keys, key])
        pipe.pttl(key)
        (*raw_versions, entry), left_ms = pipe.execute()
    except RedisError as exc:
        _breaker.trip(exc, "cache read")
        return Answer(_computed(compute).body, False, None)
    versions = {
        str(namespace): version_value(raw)
        for namespace, raw in zip(namespaces, raw_versions, strict=False)
    }
    needed = replayed_needed(raw_versions[len(namespaces) :]) if with_lsns else None
    line = _versions_line(versions.values())
    if entry is not None and entry.startswith(line):
        # A copy elsewhere lives no longer than this entry, which the answer's expiry bounds.
        body = entry[len(line) :]
        return Answer(body, True, versions, time.time() + max(left_ms, 0) / 1000)
    with replicas.reads_at_least(needed):
        body, expires_at = _computed(compute)
    keep_ms = (timeout or settings.CACHE_TIMEOUT_SECONDS) * 1000
    if expires_at is not None:
        keep_ms = min(keep_ms, int((expires_at - time.time()) * 1000))
    if keep_ms > 0:
        cache_write(key, line + body, until=time.time() + keep_ms / 1000, action="cache write")
    return Answer(body, False, versions if keep_ms > 0 else None, expires_at)


class _HeldWrite(NamedTuple):
    key: str
    entry: bytes
    # Unix time: the entry is not kept past it, however late it is written.
    until: float
    action: str


# The writes of the request being answered, held until its answer has been sent
# (`writes_held`), or None: each written at once.
_held_writes: ContextVar[list[_HeldWrite] | None] = ContextVar("held_writes", default=None)


def cache_write(key: str, entry: bytes, *, until: float, action: str) -> None:
    """File `entry` under `key` until `until` (Unix time): once the answer is sent when
    the server holds the request's writes, else now. `action` names the write in the
    breaker's log."""
    write = _HeldWrite(key, entry, until, action)
    held = _held_writes.get()
    if held is not None:
        held.append(write)
    else:
        write_held([write])


@contextmanager
def writes_held() -> Iterator[list[_HeldWrite]]:
    """Hold the cache writes made within (in this context, and in the threads it hands
    work to) in the list given, for `write_held` to make after the answer is sent.

    A miss otherwise writes its answer to Redis before the answer goes out: a round trip
    for the answer cache and another for the front cache's copy, each as long as the
    answer is large (3 ms for a 400 kB tile), which the client waited for. A later
    write only lets a request that arrives meanwhile compute the answer again."""
    held: list[_HeldWrite] = []
    token = _held_writes.set(held)
    try:
        yield held
    finally:
        _held_writes.reset(token)


def write_held(writes: list[_HeldWrite]) -> None:
    """Make `writes` in one round trip, each kept for what is left of its time."""
    now = time.time()
    live = [(write, int((write.until - now) * 1000)) for write in writes]
    live = [(write, keep_ms) for write, keep_ms in live if keep_ms > 0]
    if not live or not _breaker.allows():
        return
    try:
        pipe = _redis().pipeline(transaction=False)
        for write, keep_ms in live:
            pipe.set(write.key, write.entry, px=keep_ms)
        pipe.execute()
    except RedisError as exc:
        _breaker.trip(exc, live[0][0].action)
