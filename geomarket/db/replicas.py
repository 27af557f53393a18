"""Reads sent to streaming replicas (`DATABASE_REPLICA_URLS`), only where the code says so.

A read goes to a replica only inside a selector marked `@replica_reads`: the read-only
selectors of search, nearby, delivering-to, tiles, analytics and public lists. Everything
else (writes, reads in a transaction, every read of an unsafe request, or after a write
through the ORM in the same request) stays on the primary. Raw SQL reads ask
`read_alias()` which connection to use; ORM reads ask the router.

A replica serves a read only when the last reading of it (taken at most every
`REPLICA_CHECK_SECONDS` per process, on a connection of its own, never per read) says it
is up, lags at most `REPLICA_MAX_LAG_SECONDS`, and has replayed the primary's WAL at
least as far as the read requires (`reads_at_least`): the client's last write
(read-your-writes, `ReplicaReadsMiddleware`) and the cache versions an answer will be
filed under (`geomarket.answer_cache`). Otherwise the primary serves it. A replica that
fails during a marked selector is marked down and the selector runs again on the primary,
in the same request.

The event-loop lane's pools follow the same readings (`geomarket.lane.async_db`).
"""

import asyncio
import contextlib
import contextvars
import functools
import itertools
import logging
import threading
import time
from dataclasses import dataclass

import psycopg
from django.conf import settings
from django.core.cache import cache
from django.db import DEFAULT_DB_ALIAS, InterfaceError, OperationalError, connections
from django_redis import get_redis_connection

logger = logging.getLogger(__name__)

# A replica that could not be read is left alone this long before it is tried again.
DOWN_SECONDS = 5.0

# Where the replica has replayed to, as a number comparable with `PRIMARY_LSN_SQL`'s, and
# how many seconds behind it is: none when it has replayed all it received (an idle
# primary sends nothing, and the last replayed transaction only grows older).
READING_SQL = """
SELECT (pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::bigint,
       CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
            ELSE coalesce(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), 0)
       END::float8
"""
PRIMARY_LSN_SQL = "SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint"


def configured() -> bool:
    return bool(settings.REPLICA_ALIASES)


def primary_lsn() -> int:
    """How far the primary has written its WAL: a committed write is at or before it."""
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute(PRIMARY_LSN_SQL)
        return cursor.fetchone()[0]


@dataclass
class Reading:
    replay_lsn: int = -1
    lag: float = float("inf")
    at: float = float("-inf")  # monotonic
    down_until: float = 0.0


class Monitor:
    """The process's readings of its replicas, and the choice of one for a read."""

    def __init__(self):
        self.readings: dict[str, Reading] = {}
        self._connections: dict[str, psycopg.Connection] = {}
        self._refreshing = threading.Lock()
        self._turn = itertools.count()

    def forget(self) -> None:
        for connection in self._connections.values():
            connection.close()
        self._connections.clear()
        self.readings.clear()

    def _reading(self, alias: str) -> Reading:
        reading = self.readings.get(alias)
        if reading is None:
            reading = self.readings[alias] = Reading()
        return reading

    def due(self) -> bool:
        now = time.monotonic()
        return any(self._due(alias, now) for alias in settings.REPLICA_ALIASES)

    def _due(self, alias: str, now: float) -> bool:
        reading = self._reading(alias)
        return now >= reading.down_until and now - reading.at >= settings.REPLICA_CHECK_SECONDS

    def refresh_due(self) -> None:
        """Read the replicas whose reading is older than `REPLICA_CHECK_SECONDS`; a thread
        finding another one at it goes on with the readings there are."""
        if not self._refreshing.acquire(blocking=False):
            return
        try:
            now = time.monotonic()
            for alias in settings.REPLICA_ALIASES:
                if self._due(alias, now):
                    self.refresh(alias)
        finally:
            self._refreshing.release()

    def refresh(self, alias: str) -> Reading:
        reading = self._reading(alias)
        try:
            connection = self._connections.get(alias)
            if connection is None or connection.closed:
                # Imported here: geomarket.sql asks this module where its reads go.
                from geomarket.sql import own_connection_params

                connection = psycopg.connect(**own_connection_params(alias), autocommit=True)
                self._connections[alias] = connection
            replay_lsn, lag = connection.execute(READING_SQL).fetchone()
        except psycopg.Error as exc:
            self.down(alias, exc)
            return reading
        reading.replay_lsn = -1 if replay_lsn is None else replay_lsn
        reading.lag = lag
        reading.at = time.monotonic()
        reading.down_until = 0.0
        return reading

    def down(self, alias: str, exc: Exception) -> None:
        reading = self._reading(alias)
        if reading.down_until < time.monotonic():
            logger.warning("replica %s skipped for %.0f s: %r", alias, DOWN_SECONDS, exc)
        reading.down_until = time.monotonic() + DOWN_SECONDS
        reading.at = float("-inf")
        connection = self._connections.pop(alias, None)
        if connection is not None:
            connection.close()

    def usable(self, alias: str, *, min_lsn: int) -> bool:
        reading = self._reading(alias)
        return (
            time.monotonic() >= reading.down_until
            and reading.lag <= settings.REPLICA_MAX_LAG_SECONDS
            and reading.replay_lsn >= max(min_lsn, 0)
        )

    def pick(self, *, min_lsn: int) -> str | None:
        """A replica that may serve a read needing `min_lsn` replayed, in turns; None: the
        primary must."""
        aliases = settings.REPLICA_ALIASES
        start = next(self._turn)
        for step in range(len(aliases)):
            alias = aliases[(start + step) % len(aliases)]
            if self.usable(alias, min_lsn=min_lsn):
                return alias
        return None

    def healthy(self) -> bool:
        """Whether every replica answers and keeps up, read now."""
        return all(
            self.refresh(alias).at > float("-inf") and self.usable(alias, min_lsn=0)
            for alias in settings.REPLICA_ALIASES
        )


monitor = Monitor()


class _Reads:
    """One marked selector's run: the connection it read from, once chosen."""

    __slots__ = ("used",)

    def __init__(self):
        self.used: str | None = None


class _Request:
    """What the request has done that keeps its reads on the primary, whether it changed
    what replicas serve (`wrote_shown`), and its user's last such write (`user_floor`)."""

    __slots__ = ("http", "primary", "user_lsn", "wrote")

    def __init__(self, http, *, primary: bool):
        self.http = http
        self.primary = primary
        self.wrote = False
        self.user_lsn: int | None = None

    def user_floor(self) -> int | None:
        """The WAL position of the signed-in user's last write of what replicas serve,
        within `REPLICA_STICKY_SECONDS` (0: none), looked up once, when the request first
        reads from a marked selector: DRF has authenticated a token by then. None when it
        cannot be known (the cache is down): the primary serves."""
        if self.user_lsn is None:
            user = getattr(self.http, "user", None)
            if user is None or not user.is_authenticated:
                self.user_lsn = 0
            else:
                self.user_lsn = _user_position(user.pk)
        return self.user_lsn


def _user_key(user_id: int) -> str:
    return f"replica-read-after:{user_id}"


# Keep the later of the kept position and ARGV[1], both decimal digits (compared as text
# of equal length: positions pass what a Lua number holds exactly), for ARGV[2] seconds.
# Two requests of one user finishing out of order must not leave the earlier write's.
_KEEP_LATER_SCRIPT = """
local kept = redis.call('GET', KEYS[1])
if kept and (#kept > #ARGV[1] or (#kept == #ARGV[1] and kept >= ARGV[1])) then
    return redis.call('EXPIRE', KEYS[1], ARGV[2])
end
return redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
"""


def _user_position(user_id: int, *, written: int | None = None) -> int | None:
    """Read (or with `written`, keep) a user's last write position in the cache, behind the
    answer cache's breaker, so that a Redis outage costs no timeout per read: None when
    the cache cannot answer."""
    # answer_cache imports this module for the versions' positions.
    from geomarket import answer_cache

    if not answer_cache.breaker_closed():
        return None
    key = _user_key(user_id)
    try:
        if written is not None:
            if settings.REPLICA_STICKY_SECONDS > 0:
                script = get_redis_connection("default").register_script(_KEEP_LATER_SCRIPT)
                sticky = settings.REPLICA_STICKY_SECONDS
                script(keys=[cache.make_key(key)], args=[written, sticky])
            return written
        return int(cache.get(key) or 0)
    except Exception as exc:  # the cache's error, whichever client raised it
        answer_cache.breaker_trip(exc, "read-your-writes positions")
        return None


def wrote_shown() -> None:
    """The request writes what marked selectors show: its later reads, and its client's
    next ones, must see the write."""
    request = _request.get(None)
    if request is not None:
        request.wrote = request.primary = True


_reads: contextvars.ContextVar[_Reads | None] = contextvars.ContextVar("replica_reads")
_request: contextvars.ContextVar[_Request | None] = contextvars.ContextVar("replica_request")
# The WAL position a replica must have replayed to serve the reads here.
_floor: contextvars.ContextVar[int] = contextvars.ContextVar("replica_floor", default=0)


@contextlib.contextmanager
def reads_at_least(lsn: int | None):
    """Reads in this block go to a replica only if it has replayed `lsn` (None: no need)."""
    if lsn is None or lsn <= _floor.get():
        yield
        return
    token = _floor.set(lsn)
    try:
        yield
    finally:
        _floor.reset(token)


def read_alias() -> str:
    """The connection for a read here: a replica inside a marked selector when one may
    serve it, else the primary."""
    reads = _reads.get(None)
    if reads is None:
        return DEFAULT_DB_ALIAS
    if reads.used is None:
        reads.used = _choose()
    return reads.used


def _choose() -> str:
    request = _request.get(None)
    if request is not None and request.primary:
        return DEFAULT_DB_ALIAS
    if connections[DEFAULT_DB_ALIAS].in_atomic_block:
        return DEFAULT_DB_ALIAS
    floor = _floor.get()
    if request is not None:
        user_floor = request.user_floor()
        if user_floor is None:
            return DEFAULT_DB_ALIAS
        floor = max(floor, user_floor)
    if monitor.due():
        monitor.refresh_due()
    return monitor.pick(min_lsn=floor) or DEFAULT_DB_ALIAS


@contextlib.contextmanager
def replica_scope():
    """The reads of this block are a read-only selector's, which a replica may serve (all
    from the one chosen for the first); for the event loop's routes, as `replica_reads`."""
    if _reads.get(None) is not None:
        yield _reads.get()
        return
    reads = _Reads()
    token = _reads.set(reads)
    try:
        yield reads
    finally:
        _reads.reset(token)


def replica_reads(selector):
    """Mark a read-only selector whose reads a replica may serve; see the module's
    docstring. A replica failing during it sends it to the primary, once."""

    @functools.wraps(selector)
    def reading(*args, **kwargs):
        if not settings.REPLICA_ALIASES:
            return selector(*args, **kwargs)
        with replica_scope() as reads:
            try:
                return selector(*args, **kwargs)
            except (OperationalError, InterfaceError) as exc:
                if reads.used in (None, DEFAULT_DB_ALIAS):
                    raise
                connections[reads.used].close()
                left(reads.used, exc)
                return selector(*args, **kwargs)

    return reading


def left(alias: str, exc: Exception) -> None:
    """The replica `alias` failed a read of this scope: the primary serves the rest."""
    monitor.down(alias, exc)
    reads = _reads.get(None)
    if reads is not None:
        reads.used = DEFAULT_DB_ALIAS


async def read_alias_async() -> str:
    """`read_alias` for the event loop: a reading that is due is taken in a thread."""
    reads = _reads.get(None)
    if reads is None:
        return DEFAULT_DB_ALIAS
    if reads.used is None:
        if not settings.REPLICA_ALIASES:
            reads.used = DEFAULT_DB_ALIAS
            return reads.used
        if monitor.due():
            await asyncio.to_thread(monitor.refresh_due)
        reads.used = monitor.pick(min_lsn=_floor.get()) or DEFAULT_DB_ALIAS
    return reads.used


class ReplicaRouter:
    """ORM reads inside a marked selector follow `read_alias`; every write goes to the
    primary (an object read from a replica included) and keeps the request's later reads
    there."""

    def db_for_read(self, model, **hints):
        return read_alias() if _reads.get(None) is not None else None

    def db_for_write(self, model, **hints):
        request = _request.get(None)
        if request is not None:
            request.primary = True
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1, obj2, **hints):
        return True

    def allow_migrate(self, db, app_label, **hints):
        # A replica has the primary's schema by replication, and accepts no writes.
        return db == DEFAULT_DB_ALIAS


# Read-your-writes: the cookie a client's write answer sets, `<lsn>.<until>` (Unix time):
# until then, that client's marked reads need a replica that has replayed the write.
READ_AFTER_COOKIE = "gm_read_after"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


def _client_floor(request) -> int:
    raw = request.COOKIES.get(READ_AFTER_COOKIE, "")
    lsn, _, until = raw.partition(".")
    if not (lsn.isdigit() and until.isdigit()) or int(until) < time.time():
        return 0
    return int(lsn)


class ReplicaReadsMiddleware:
    """Keeps every read of an unsafe request on the primary, and after a client's write
    of what replicas serve (a write that bumps answer-cache namespaces: catalog, merchants,
    stock) sends its reads for `REPLICA_STICKY_SECONDS` only where the write has been
    replayed: the write's answer carries the primary's WAL position in a cookie, which
    browsers keep, and a signed-in user's position is also kept in the cache for as long,
    for token clients that keep no cookies (`_Request.user_floor`). Other writes
    (a courier's ping) set none, so the event loop's routes, which answer no request with a
    cookie and learn no answer setting one, keep serving their callers. A forged cookie can
    only send its own client's reads to the primary. Synchronous: the served chain is
    (geomarket.asgi)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not settings.REPLICA_ALIASES:
            return self.get_response(request)
        state = _Request(request, primary=request.method not in _SAFE_METHODS)
        request_token = _request.set(state)
        floor_token = _floor.set(_client_floor(request))
        try:
            response = self.get_response(request)
        finally:
            _request.reset(request_token)
            _floor.reset(floor_token)
        return self._written(request, response) if state.wrote else response

    def _written(self, request, response):
        if response.status_code >= 400:
            return response
        sticky = settings.REPLICA_STICKY_SECONDS
        lsn = primary_lsn()
        until = int(time.time()) + sticky
        response.set_cookie(
            READ_AFTER_COOKIE, f"{lsn}.{until}", max_age=sticky, httponly=True,
            samesite="Lax",
        )  # fmt: skip
        # A token client need not keep cookies: its user's reads follow the write too.
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            _user_position(user.pk, written=lsn)
        return response
