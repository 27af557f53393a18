"""The event-loop routes' own connection pool, against the real database."""

import asyncio

import psycopg
import pytest
from django.db import connection

from geomarket.db.direct import direct_connection_params
from geomarket.lane import async_db

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("async_pool_closed"),
]


def pool(*, max_size: int, timeout: float = 3.0, direct: bool = False) -> async_db.ConnectionPool:
    """The lane's pool; `direct`: to PostgreSQL itself, past a transaction pooler."""
    kwargs = async_db._connection_kwargs() | (direct_connection_params() if direct else {})
    return async_db.ConnectionPool(kwargs=kwargs, max_size=max_size, timeout=timeout)


async def backend_of(connections_pool: async_db.ConnectionPool, seconds: float) -> int:
    held = await connections_pool.acquire()
    try:
        cursor = await held.execute("SELECT pg_backend_pid(), pg_sleep(%s)", [seconds])
        return (await cursor.fetchone())[0]
    finally:
        connections_pool.release(held)


async def test_many_callers_share_at_most_max_size_connections():
    # Counted by their server sessions, which a pooler would deal out as it likes.
    shared = pool(max_size=2, direct=True)
    backends = await asyncio.gather(*(backend_of(shared, 0.05) for _ in range(12)))
    assert len(set(backends)) == 2
    assert shared.size == 2
    assert len(shared.idle) == 2
    await shared.close()


async def test_a_caller_gives_up_when_no_connection_comes_free():
    shared = pool(max_size=1, timeout=0.2)
    held = await shared.acquire()
    with pytest.raises(psycopg.OperationalError):
        await shared.acquire()
    shared.release(held)
    assert await backend_of(shared, 0) > 0
    await shared.close()


async def test_a_cancelled_waiter_takes_no_connection_with_it():
    shared = pool(max_size=1)
    held = await shared.acquire()
    waiting = asyncio.ensure_future(shared.acquire())
    await asyncio.sleep(0.01)
    waiting.cancel()
    shared.release(held)
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert len(shared.idle) == 1
    assert shared.size == 1
    await shared.close()


async def test_a_broken_connection_is_replaced():
    # Ended by PostgreSQL itself: a pooler would hide the end of its server session.
    shared = pool(max_size=1, direct=True)
    first = await backend_of(shared, 0)
    await asyncio.to_thread(terminate, first)
    with pytest.raises(psycopg.OperationalError):
        await backend_of(shared, 0)
    assert shared.size == 0
    assert await backend_of(shared, 0) not in (first, None)
    await shared.close()


async def test_idle_connections_can_be_discarded_at_once():
    shared = pool(max_size=3)
    await asyncio.gather(*(backend_of(shared, 0.02) for _ in range(3)))
    assert len(shared.idle) == 3
    shared.discard_idle()
    assert shared.size == 0
    assert not shared.idle
    assert await backend_of(shared, 0) > 0
    await shared.close()


def terminate(backend: int) -> None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [backend])
    finally:
        connection.close()


async def test_connections_speak_utc_and_compile_no_plans():
    assert await async_db.fetch_one(
        "SELECT current_setting('TimeZone'), current_setting('jit')", []
    ) == (
        "UTC",
        "off",
    )
