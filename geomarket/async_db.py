"""A small async connection pool to Django's database, for reads served on the ASGI event
loop (`catalog.nearby_route`) without a thread hop or Django's request cycle.

It connects with the same parameters and type adapters as Django's own connections, so
rows come back with the same Python types, and with the session time zone Django sets.
"""

import asyncio

from django.conf import settings
from django.db import connections
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

# A few connections per server process: each one serves a whole query at a time, and
# the process has one core to run its callers on.
POOL_MAX_SIZE = 4


def _connection_kwargs() -> dict:
    # The name in effect now: under tests, the test database's.
    params = connections["default"].get_connection_params()
    # Django's cursor class is a sync one; the pool's connections use the async default.
    params.pop("cursor_factory", None)
    # Django turns prepared statements off unless told otherwise, for connection poolers
    # that cannot keep them. The route runs a handful of statements thousands of times,
    # and preparing them halves the database's time on each (no parse, no plan).
    params["prepare_threshold"] = settings.ASYNC_DB_PREPARE_THRESHOLD
    return params


async def _configure(connection: AsyncConnection) -> None:
    await connection.set_autocommit(True)
    # Django's timestamp loaders assume the session speaks its time zone.
    await connection.execute("SELECT set_config('TimeZone', %s, false)", [_time_zone()])


def _time_zone() -> str:
    return "UTC" if settings.USE_TZ else settings.TIME_ZONE


class _Pools:
    """One pool per event loop: a pool's connections and workers belong to its loop."""

    def __init__(self):
        self._pool: AsyncConnectionPool | None = None
        self._loop = None
        self._lock: asyncio.Lock | None = None
        # Running checks, held so the loop does not drop them half-way.
        self._checks: set[asyncio.Task] = set()

    async def get(self) -> AsyncConnectionPool:
        loop = asyncio.get_running_loop()
        if self._loop is loop and self._pool is not None:
            return self._pool
        if self._loop is not loop:
            self._loop, self._pool, self._lock = loop, None, asyncio.Lock()
        async with self._lock:
            if self._pool is None:
                pool = AsyncConnectionPool(
                    kwargs=_connection_kwargs(),
                    configure=_configure,
                    min_size=1,
                    max_size=POOL_MAX_SIZE,
                    timeout=settings.DATABASE_CONNECT_TIMEOUT,
                    open=False,
                )
                await pool.open()
                self._pool = pool
        return self._pool

    def check_soon(self) -> None:
        """Test every idle connection in the background, so those a database restart
        broke are replaced before they fail more requests."""
        if self._pool is not None and self._loop is asyncio.get_running_loop():
            task = asyncio.create_task(self._pool.check())
            self._checks.add(task)
            task.add_done_callback(self._checks.discard)

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()


pools = _Pools()


async def fetch_value(sql: str, params: dict):
    """The first column of the first row of `sql`, as `geomarket.sql.fetch_value`."""
    pool = await pools.get()
    async with pool.connection() as connection:
        cursor = await connection.execute(sql, params)
        return (await cursor.fetchone())[0]
