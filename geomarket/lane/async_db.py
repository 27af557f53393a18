"""A small async connection pool to Django's database, for reads served on the ASGI event
loop by the fast routes (`geomarket.lane.routes`) without a thread hop or Django's request
cycle; and one to each read replica, for the reads a route marks as a replica's
(`geomarket.db.replicas`, under the same readings and rules as Django's).

It connects with the same parameters and type adapters as Django's own connections, so
rows come back with the same Python types, and with the session time zone Django sets.

The pool is ours rather than psycopg_pool's: that one's checkout and return (locks,
conditions, statistics, a scheduler) were an eighth of the route's CPU per request. This
one serves one event loop and short autocommit reads only: an idle list, a count of the
connections open, and a queue of callers waiting for one.
"""

import asyncio
import collections
import logging
import time

import psycopg
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS
from psycopg import AsyncConnection, AsyncCursor
from psycopg.pq import TransactionStatus

from geomarket.db import replicas
from geomarket.sql import own_connection_params

logger = logging.getLogger(__name__)

# Connections are opened only as concurrent callers need them. A read keeps its
# connection busy for its CPU time, and the process has one core to run its callers on, so
# reads rarely need more than a few. A ping's commit waits for its WAL flush (a few
# milliseconds on a plain disk) without using a core: commits are flushed together, so
# pings go as fast as there are connections in flight, as many as the clients at once.
POOL_MAX_SIZE = 16


def _connection_kwargs(alias: str = DEFAULT_DB_ALIAS) -> dict:
    params = own_connection_params(alias)
    # Django turns prepared statements off unless told otherwise, for connection poolers
    # that cannot keep them. The route runs a handful of statements thousands of times,
    # and preparing them halves the database's time on each (no parse, no plan).
    params["prepare_threshold"] = settings.ASYNC_DB_PREPARE_THRESHOLD
    return params


async def _configure(connection: AsyncConnection) -> None:
    await connection.set_autocommit(True)
    # Django's timestamp loaders assume the session speaks its time zone.
    await connection.execute("SELECT set_config('TimeZone', %s, false)", [_time_zone()])
    # These connections serve short reads, prepared once and run thousands of times.
    # PostgreSQL compiles a plan whose estimated cost passes its JIT thresholds on every
    # execution, and estimates over generated series overshoot: the revenue report of
    # every merchant spent 290 ms compiling in a 450 ms query.
    await connection.execute("SELECT set_config('jit', 'off', false)")


def _time_zone() -> str:
    return "UTC" if settings.USE_TZ else settings.TIME_ZONE


class ConnectionPool:
    """At most `max_size` connections, opened on demand; a caller finding none free
    waits up to `timeout` seconds, then gets `psycopg.OperationalError`."""

    def __init__(self, *, kwargs: dict, max_size: int, timeout: float):
        self.kwargs = kwargs
        self.max_size = max_size
        self.timeout = timeout
        self.idle: list[AsyncConnection] = []
        # Connections open, being opened, or promised to a waiter that will open one.
        self.size = 0
        # Each gets a connection, or None: a free place to open one in.
        self.waiters: collections.deque[asyncio.Future] = collections.deque()
        self.closing: set[asyncio.Task] = set()
        self.closed = False
        # One cursor per connection, reused: making one per query was a few percent of a
        # nearby request's CPU.
        self.cursors: dict[AsyncConnection, AsyncCursor] = {}

    def cursor(self, connection: AsyncConnection) -> AsyncCursor:
        cursor = self.cursors.get(connection)
        if cursor is None:
            cursor = self.cursors[connection] = connection.cursor()
        return cursor

    async def acquire(self) -> AsyncConnection:
        while self.idle:
            connection = self.idle.pop()
            if not connection.closed:
                return connection
            self.cursors.pop(connection, None)
            self.size -= 1
        if self.size < self.max_size:
            self.size += 1
            return await self._open()
        waiter = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        try:
            async with asyncio.timeout(self.timeout):
                connection = await waiter
        except TimeoutError:
            raise psycopg.OperationalError("no database connection came free in time") from None
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                # Granted just as the caller went away: pass it on.
                self._give_back(waiter.result())
            waiter.cancel()
            raise
        return connection if connection is not None else await self._open()

    async def _open(self) -> AsyncConnection:
        """Open a connection in a place already counted in `size`."""
        try:
            async with asyncio.timeout(self.timeout):
                connection = await AsyncConnection.connect(**self.kwargs)
                await _configure(connection)
        except BaseException as exc:
            self._give_back(None)
            if isinstance(exc, TimeoutError):
                raise psycopg.OperationalError("the database did not answer in time") from exc
            raise
        return connection

    def release(self, connection: AsyncConnection) -> None:
        broken = connection.closed or connection.info.transaction_status != TransactionStatus.IDLE
        if broken or self.closed:
            self._close(connection)
            self._give_back(None)
            return
        self._give_back(connection)

    def _give_back(self, connection: AsyncConnection | None) -> None:
        """Hand a connection, or the place of one (None), to the first caller still waiting."""
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(connection)
                return
        if connection is None:
            self.size -= 1
        else:
            self.idle.append(connection)

    def _close(self, connection: AsyncConnection) -> None:
        self.cursors.pop(connection, None)
        task = asyncio.get_running_loop().create_task(connection.close())
        self.closing.add(task)
        task.add_done_callback(self.closing.discard)

    def discard_idle(self) -> None:
        """Close every idle connection: after a failure they may all be broken (a
        database restart), and the next callers should open fresh ones."""
        while self.idle:
            self._close(self.idle.pop())
            self.size -= 1

    async def close(self) -> None:
        self.closed = True
        self.discard_idle()
        if self.closing:
            await asyncio.gather(*self.closing, return_exceptions=True)


class _Pools:
    """One pool per event loop and database (the primary, each replica): a connection
    belongs to the loop that opened it."""

    def __init__(self):
        self._pools: dict[str, ConnectionPool] = {}
        self._loop = None

    def get(self, alias: str = DEFAULT_DB_ALIAS) -> ConnectionPool:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop = loop
            self._pools = {}
        pool = self._pools.get(alias)
        if pool is None:
            pool = self._pools[alias] = ConnectionPool(
                kwargs=_connection_kwargs(alias),
                max_size=POOL_MAX_SIZE,
                timeout=settings.DATABASE_CONNECT_TIMEOUT,
            )
        return pool

    def discard_idle(self, alias: str = DEFAULT_DB_ALIAS) -> None:
        if alias in self._pools and self._loop is asyncio.get_running_loop():
            self._pools[alias].discard_idle()

    async def close(self) -> None:
        closing, self._pools = self._pools, {}
        for pool in closing.values():
            await pool.close()


pools = _Pools()


async def fetch_value(sql: str, params: dict | list):
    """The first column of the first row of `sql`, as `geomarket.sql.fetch_value`."""
    return (await fetch_one(sql, params))[0]


async def fetch_one(sql: str, params: dict | list) -> tuple | None:
    return await _fetch(sql, params, prepare=None, many=False)


async def fetch_all(sql: str, params: dict | list, *, prepare: bool | None = None) -> list[tuple]:
    """Every row of `sql`; `prepare=False` plans it afresh with each call's values, for a
    statement whose best plan depends on them (a search's words)."""
    return await _fetch(sql, params, prepare=prepare, many=True)


async def fetch_dicts(sql: str, params: dict | list) -> list[dict]:
    """Every row of `sql` as a dict by column name, as `geomarket.sql.fetch_dicts`."""
    return await _fetch(sql, params, prepare=None, many=_DICTS)


# `many`'s value for rows as dicts.
_DICTS = "dicts"


async def _fetch(sql: str, params: dict | list, *, prepare: bool | None, many: bool | str):
    """On a replica inside `replicas.replica_scope` when one may serve the read
    (`geomarket.db.replicas`); a replica failing here leaves the read to the primary."""
    alias = await replicas.read_alias_async()
    if alias == DEFAULT_DB_ALIAS:
        return await _fetch_on(alias, sql, params, prepare=prepare, many=many)
    try:
        return await _fetch_on(alias, sql, params, prepare=prepare, many=many)
    except psycopg.OperationalError as exc:
        replicas.left(alias, exc)
        pools.discard_idle(alias)
        return await _fetch_on(DEFAULT_DB_ALIAS, sql, params, prepare=prepare, many=many)


async def _fetch_on(alias: str, sql: str, params, *, prepare: bool | None, many: bool | str):
    pool = pools.get(alias)
    connection = await pool.acquire()
    try:
        cursor = pool.cursor(connection)
        await cursor.execute(sql, params, prepare=prepare)
        if many == _DICTS:
            columns = [column.name for column in cursor.description]
            return [dict(zip(columns, row, strict=True)) for row in await cursor.fetchall()]
        return await (cursor.fetchall() if many else cursor.fetchone())
    finally:
        pool.release(connection)


# After a database error, routed requests go to Django for this long instead of each
# waiting on the pool for a connection that a database outage may never give.
DATABASE_RETRY_SECONDS = 5.0
_retry_at = 0.0


def resting() -> bool:
    """Whether the routes should leave requests to Django after a recent failure."""
    return time.monotonic() < _retry_at


def failed(exc: Exception, *, route: str) -> None:
    global _retry_at
    _retry_at = time.monotonic() + DATABASE_RETRY_SECONDS
    pools.discard_idle()
    logger.warning("%s goes through Django for a while: database error %r", route, exc)
